package report

// ReconcileVictims corrects the OOM victims boxrun named from its samples
// of the box with what it knows better, once the signal tracer's records
// are in (Run.Signals):
//   - a SIGKILL the kernel generated (SI_KERNEL) for a process of the box,
//     while the box counted OOM kills, is the OOM killer's: that process
//     is a victim (CertaintySignalTracer), ahead of any sampled guess;
//   - the command's own process is no victim when boxrun saw it end
//     otherwise than by SIGKILL: a sample that lost it at the end of the
//     run (it exited, boxrun reaped it) is no evidence of a kill.
//
// Victims from the kernel log stay as they are and first; the sampled
// ones fill in only as many kills as the box counted.
func ReconcileVictims(r *Run) {
	kills := r.Memory.Events.OOMKill
	var out []OOMVictim
	named := map[int]bool{}
	inside := uint64(0)
	sampled := map[int]OOMVictim{}
	for _, v := range r.OOMVictims {
		if v.Certainty == CertaintyKernelLog {
			out = append(out, v)
			named[v.PID] = true
			if v.InsideBox {
				inside++
			}
			continue
		}
		sampled[v.PID] = v
	}
	if kills > 0 {
		for _, s := range r.Signals {
			if inside >= kills || named[s.PID] || !s.Kernel || s.Signal != "SIGKILL" || s.Code != "SI_KERNEL" {
				continue
			}
			v := OOMVictim{PID: s.PID, Comm: s.Comm, InsideBox: true, Certainty: CertaintySignalTracer}
			if was, ok := sampled[s.PID]; ok {
				v.RSSBytes, v.Global = was.RSSBytes, was.Global
			}
			out = append(out, v)
			named[s.PID] = true
			inside++
		}
	}
	for _, v := range r.OOMVictims {
		if v.Certainty == CertaintyKernelLog || named[v.PID] || inside >= kills {
			continue
		}
		if v.PID == r.PID && r.Signal != "SIGKILL" {
			continue // boxrun saw the command end, and not by SIGKILL
		}
		out = append(out, v)
		named[v.PID] = true
		inside++
	}
	r.OOMVictims = out
}
