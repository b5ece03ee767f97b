package signals

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// ringSize is the ring buffer's size: fatal signals are rare, and a burst
// (a process group killed at once) is a few hundred events of EventSize.
const ringSize = 256 << 10

// ReadOffsets reads the signal_generate record's layout from the first of
// FormatFiles that exists.
func ReadOffsets() (Offsets, error) {
	var errs []error
	for _, p := range FormatFiles {
		f, err := os.Open(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		o, err := ParseFormat(f)
		f.Close()
		if err != nil {
			return o, fmt.Errorf("%s: %w", p, err)
		}
		return o, nil
	}
	return Offsets{}, fmt.Errorf("reading the signal_generate tracepoint's format (is tracefs mounted? mount -t tracefs nodev /sys/kernel/tracing): %w", errors.Join(errs...))
}

// tracefsDir is where tracefs belongs.
const tracefsDir = "/sys/kernel/tracing"

// EnsureTracefs mounts tracefs at /sys/kernel/tracing when no format file
// is readable and that directory is there, empty: a boot without systemd
// (whose sys-kernel-tracing.mount does it) may not have mounted it. It
// reports whether it mounted it.
func EnsureTracefs() (bool, error) {
	for _, p := range FormatFiles {
		if _, err := os.Stat(p); err == nil {
			return false, nil
		}
	}
	if err := unix.Mount("nodev", tracefsDir, "tracefs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return false, fmt.Errorf("mounting tracefs at %s: %w", tracefsDir, err)
	}
	return true, nil
}

// program is the BPF program on signal:signal_generate: for a signal in
// Traced(), it reserves an event in the ring buffer events, fills it from
// the tracepoint's record (at the offsets o) and from the sending task
// (pid, uid, cgroup id, command), and submits it. Its license string is
// "GPL": the kernel offers some tracing helpers only to programs that
// declare a GPL-compatible one.
func program(o Offsets, events *ebpf.Map) asm.Instructions {
	load := func(field Field, dst int16) asm.Instructions {
		return asm.Instructions{
			asm.LoadMem(asm.R1, asm.R6, int16(field.Offset), asm.Word),
			asm.StoreMem(asm.R7, dst, asm.R1, asm.Word),
		}
	}
	store64 := func(fn asm.BuiltinFunc, dst int16) asm.Instructions {
		return asm.Instructions{fn.Call(), asm.StoreMem(asm.R7, dst, asm.R0, asm.DWord)}
	}
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // the tracepoint's record
		asm.LoadMem(asm.R2, asm.R6, int16(o.Sig.Offset), asm.Word),
		asm.JGT.Imm(asm.R2, 31, "exit"),
		asm.Mov.Imm32(asm.R3, int32(Traced())),
		asm.RSh.Reg(asm.R3, asm.R2),
		asm.And.Imm(asm.R3, 1),
		asm.JEq.Imm(asm.R3, 0, "exit"),

		asm.LoadMapPtr(asm.R1, events.FD()),
		asm.Mov.Imm(asm.R2, EventSize),
		asm.Mov.Imm(asm.R3, 0),
		asm.FnRingbufReserve.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.Mov.Reg(asm.R7, asm.R0), // the event
	}
	insns = append(insns, store64(asm.FnKtimeGetNs, evTime)...)
	insns = append(insns, store64(asm.FnGetCurrentPidTgid, evPidTgid)...)
	insns = append(insns, store64(asm.FnGetCurrentUidGid, evUidGid)...)
	insns = append(insns, store64(asm.FnGetCurrentCgroupId, evCgroup)...)
	insns = append(insns, load(o.Sig, evSig)...)
	insns = append(insns, load(o.Code, evCode)...)
	insns = append(insns, load(o.PID, evPID)...)
	insns = append(insns, load(o.Group, evGroup)...)
	insns = append(insns, load(o.Result, evResult)...)
	insns = append(insns, asm.StoreImm(asm.R7, evResult+4, 0, asm.Word))
	for i := range 4 {
		insns = append(insns, load(Field{Offset: o.Comm.Offset + 4*i}, int16(evTargetComm+4*i))...)
	}
	insns = append(insns,
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.Add.Imm(asm.R1, evSenderComm),
		asm.Mov.Imm(asm.R2, 16),
		asm.FnGetCurrentComm.Call(),

		asm.Mov.Reg(asm.R1, asm.R7),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRingbufSubmit.Call(),

		asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
		asm.Return(),
	)
	return insns
}

// ErrRingbufUnsupported is a kernel without BPF ring buffers.
var ErrRingbufUnsupported = errors.New("BPF ring buffers not supported (requires Linux >= 5.8)")

// load creates the ring buffer and loads the program into the kernel.
func load(o Offsets) (*ebpf.Program, *ebpf.Map, error) {
	events, err := ebpf.NewMap(&ebpf.MapSpec{Name: "boxrun_signals", Type: ebpf.RingBuf, MaxEntries: ringSize})
	if err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			return nil, nil, fmt.Errorf("%w: %v", ErrRingbufUnsupported, err)
		}
		return nil, nil, fmt.Errorf("creating the ring buffer: %w", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "boxrun_signals",
		Type:         ebpf.TracePoint,
		License:      "GPL",
		Instructions: program(o, events),
	})
	if err != nil {
		events.Close()
		return nil, nil, fmt.Errorf("loading the BPF program: %w", err)
	}
	return prog, events, nil
}
