package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/boxrun/boxrun/internal/systemd"
	"github.com/boxrun/boxrun/signals"
)

// tracerUnitName is the system unit that runs the signal tracer.
const tracerUnitName = "boxrun-signals.service"

// tracerUnitFile is where `boxrun install signal-tracer` writes it.
const tracerUnitFile = "/etc/systemd/system/" + tracerUnitName

// tracerUnitTemplate is contrib/systemd/boxrun-signals.service with
// @BOXRUN@ for the path of the binary (a test keeps the two equal).
const tracerUnitTemplate = `# boxrun-signals.service: records who sends the fatal signals that kill
# processes in boxrun's boxes (a BPF program on signal:signal_generate), so
# that a run's report names the sender. Install it with
#
#   sudo boxrun install signal-tracer
#
# which writes this file with the path of the boxrun binary to
# /etc/systemd/system/ and enables and starts it; remove it with
# sudo boxrun uninstall signal-tracer. Its records are in
# /run/boxrun/signals/UID/, readable by that user only.

[Unit]
Description=boxrun: name the senders of signals that kill processes in boxes
Documentation=https://github.com/boxrun/boxrun#who-sent-the-signal

[Service]
Type=notify
ExecStart=@BOXRUN@ signal-tracer
Restart=on-failure
RestartSec=5s
MemoryMax=64M
TasksMax=32

[Install]
WantedBy=multi-user.target
`

// tracerUnit renders the unit for the boxrun binary at exe.
func tracerUnit(exe string) string {
	return strings.Replace(tracerUnitTemplate, "@BOXRUN@", unitExecPath(exe), 1)
}

// runSignalTracer implements `boxrun signal-tracer`: it loads the BPF
// program, tells systemd it is ready (Type=notify), and writes records
// until SIGTERM or SIGINT.
func runSignalTracer(ctx context.Context, _ options, args []string, _ io.Writer, out *printer) int {
	fs := newSubcommand("signal-tracer", "usage: boxrun signal-tracer\n\n"+
		"Runs the signal tracer in the foreground, as root (boxrun-signals.service runs it).", out)
	if code, done := parseSubcommand(fs, "signal-tracer", args, "", out); done {
		return code
	}
	if fs.NArg() > 0 {
		out.errorf("signal-tracer: takes no arguments, got %q", fs.Arg(0))
		return exitBoxrunFailed
	}
	if os.Geteuid() != 0 {
		out.errorf("signal-tracer: needs root, to load a BPF program")
		out.hintf("sudo boxrun install signal-tracer runs it as a system service")
		return exitBoxrunFailed
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	w := &signals.Writer{Root: signals.Root, MaxBytes: signals.DefaultMaxBytes}
	if err := w.Prepare(); err != nil {
		out.errorf("signal-tracer: %v", err)
		return 1
	}
	if mounted, err := signals.EnsureTracefs(); err != nil {
		out.warnf("%v", err)
	} else if mounted {
		out.infof("mounted tracefs at /sys/kernel/tracing, where the kernel describes its tracepoints (it was not mounted)")
	}
	tr, err := signals.Open()
	if err != nil {
		out.errorf("signal-tracer: %v", err)
		if errors.Is(err, signals.ErrRingbufUnsupported) {
			out.hintf("the tracer needs Linux 5.8 or later")
		}
		return 1
	}
	defer tr.Close()
	out.infof("tracing fatal signals to processes in boxes; records in %s/UID/%s", signals.Root, signals.File)
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		out.warnf("telling systemd boxrun is ready: %v", err)
	}
	if err := tr.Run(ctx, w, func(format string, a ...any) { out.warnf(format, a...) }); err != nil {
		out.errorf("signal-tracer: %v", err)
		return 1
	}
	return 0
}

// runInstallTracer implements `boxrun install signal-tracer` (install)
// and `boxrun uninstall signal-tracer`, through the system manager.
func runInstallTracer(ctx context.Context, install bool, out *printer) int {
	verb := "uninstall"
	if install {
		verb = "install"
	}
	if os.Geteuid() != 0 {
		out.errorf("%s signal-tracer: needs root: it is a system service that loads a BPF program", verb)
		out.hintf("sudo boxrun %s signal-tracer", verb)
		return exitBoxrunFailed
	}
	if !install {
		removed, err := systemd.UninstallSystemUnit(ctx, tracerUnitFile)
		if err != nil {
			out.errorf("uninstall signal-tracer: %v", err)
			return 1
		}
		// Without a tracer, a run's report says how to install one: the
		// records of users (their directories) go with it.
		if err := os.RemoveAll(signals.Root); err != nil {
			out.warnf("removing the records in %s: %v", signals.Root, err)
		}
		if !removed {
			out.infof("%s was not installed", tracerUnitName)
			return 0
		}
		out.infof("stopped, disabled and removed %s (%s), and the records in %s", tracerUnitName, tracerUnitFile, signals.Root)
		return 0
	}
	exe, ok := unitExe("signal-tracer", out)
	if !ok {
		return 1
	}
	if err := systemd.InstallSystemUnit(ctx, tracerUnitFile, tracerUnit(exe)); err != nil {
		out.errorf("install signal-tracer: %v", err)
		return 1
	}
	out.infof("installed, enabled and started %s (%s), running %s signal-tracer", tracerUnitName, tracerUnitFile, exe)
	out.hintf("see what it does: journalctl -u %s; runs now name who sent a signal that killed a process in their box", tracerUnitName)
	return 0
}
