package probe

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
	"testing/fstest"
)

func TestFeatureVersions(t *testing.T) {
	tests := []struct {
		f              Feature
		name, requires string
	}{
		{MemoryPeak, "memory.peak", "Linux 5.19"},
		{CgroupKill, "cgroup.kill", "Linux 5.14"},
		{CloneIntoCgroup, "CLONE_INTO_CGROUP", "Linux 5.7"},
		{ScopeOOMPolicy, "OOMPolicy", "systemd 252.5"},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.name {
			t.Errorf("String() = %q, want %q", got, tt.name)
		}
		if got := tt.f.Requires(); got != tt.requires {
			t.Errorf("%s: Requires() = %q, want %q", tt.f, got, tt.requires)
		}
		if tt.f.Without() == "" {
			t.Errorf("%s: no fallback named", tt.f)
		}
	}
}

func TestMissing(t *testing.T) {
	enoent := fmt.Errorf("open /sys/fs/cgroup/x/memory.peak: %w", fs.ErrNotExist)
	eperm := fmt.Errorf("open /sys/fs/cgroup/x/cgroup.kill: %w", fs.ErrPermission)
	tests := []struct {
		name    string
		f       Feature
		err     error
		missing bool // a *NotSupportedError
	}{
		{"no error", MemoryPeak, nil, false},
		{"the file does not exist", MemoryPeak, enoent, true},
		{"may not be written", CgroupKill, eperm, false},
		{"not a file feature", CloneIntoCgroup, enoent, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Missing(tt.f, tt.err)
			if got := errors.Is(err, ErrNotSupported); got != tt.missing {
				t.Fatalf("Missing(%s, %v) = %v, not supported %v; want %v", tt.f, tt.err, err, got, tt.missing)
			}
			if !tt.missing && err != tt.err {
				t.Errorf("Missing(%s, %v) = %v, want the error itself", tt.f, tt.err, err)
			}
		})
	}
}

func TestRefused(t *testing.T) {
	refused := errors.New("Cannot set property OOMPolicy, or unknown property.")
	if err := Refused(ScopeOOMPolicy, refused); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Refused(OOMPolicy, %v) = %v, want not supported", refused, err)
	}
	other := errors.New("Unit boxrun-tests-1.scope already exists.")
	if err := Refused(ScopeOOMPolicy, other); err != other {
		t.Errorf("Refused(OOMPolicy, %v) = %v, want the error itself", other, err)
	}
	if err := Refused(MemoryPeak, refused); err != refused {
		t.Errorf("a kernel feature is never refused by a manager: got %v", err)
	}
}

func TestNotSupportedError(t *testing.T) {
	err := error(&NotSupportedError{Feature: MemoryPeak, Have: "5.15.0"})
	want := "memory.peak not supported (requires Linux 5.19 or later; this is 5.15.0)"
	if err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	if !errors.Is(err, ErrNotSupported) {
		t.Error("not ErrNotSupported")
	}
}

func TestSystemdVersion(t *testing.T) {
	tests := map[string]int{`"252.38-1~deb12u1"`: 252, `"255"`: 255, `"v"`: 0, ``: 0, `"253.5-1ubuntu6"`: 253, `256.7`: 256}
	for in, want := range tests {
		if got := SystemdVersion(in); got != want {
			t.Errorf("SystemdVersion(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestSystemdHas(t *testing.T) {
	tests := []struct {
		version string
		f       Feature
		want    Result
	}{
		{"252.39-1~deb12u1", ScopeOOMPolicy, Result{Supported: true, Known: true}}, // Debian 12: the stable backport
		{`"252.5"`, ScopeOOMPolicy, Result{Supported: true, Known: true}},          // the first with it, as D-Bus quotes it
		{"252.4-2", ScopeOOMPolicy, Result{Known: true}},                           // the last without
		{"252", ScopeOOMPolicy, Result{Known: true}},
		{"251.4-3", ScopeOOMPolicy, Result{Known: true}},
		{"253", ScopeOOMPolicy, Result{Supported: true, Known: true}},
		{"257.13-1~deb13u1", ScopeOOMPolicy, Result{Supported: true, Known: true}},
		{"252-46.el9_5", ScopeOOMPolicy, Result{Known: true}}, // its backports do not show in its version
		{"", ScopeOOMPolicy, Result{}},
		{"v", ScopeOOMPolicy, Result{}},
		{"257", MemoryPeak, Result{}}, // not systemd's to answer
	}
	for _, tt := range tests {
		if got := SystemdHas(tt.version, tt.f); got != tt.want {
			t.Errorf("SystemdHas(%q, %s) = %+v, want %+v", tt.version, tt.f, got, tt.want)
		}
	}
}

func TestKernelAtLeast(t *testing.T) {
	tests := []struct {
		release, want string
		ok, known     bool
	}{
		{"6.1.0-13-amd64", "5.19", true, true},
		{"5.19.0", "5.19", true, true},
		{"5.18.17-arch1", "5.19", false, true},
		{"5.4.0-150-generic", "5.7", false, true},
		{"10.0", "5.7", true, true},
		{"6.18.44-fc-v782", "5.14", true, true},
		{"", "5.7", false, false},
		{"weird", "5.7", false, false},
	}
	for _, tt := range tests {
		ok, known := KernelAtLeast(tt.release, tt.want)
		if ok != tt.ok || known != tt.known {
			t.Errorf("KernelAtLeast(%q, %q) = %v, %v; want %v, %v", tt.release, tt.want, ok, known, tt.ok, tt.known)
		}
	}
}

// machine is a cgroup2 tree with a memory cgroup /user.slice on an old
// kernel's cgroup files (memory.peak missing, cgroup.kill present).
func machine() fstest.MapFS {
	return fstest.MapFS{
		"sys/fs/cgroup/cgroup.controllers":          {Data: []byte("memory pids\n")},
		"sys/fs/cgroup/init.scope/cgroup.procs":     {Data: []byte("1\n")},
		"sys/fs/cgroup/user.slice/memory.current":   {Data: []byte("4096\n")},
		"sys/fs/cgroup/user.slice/cgroup.kill":      {},
		"sys/fs/cgroup/user.slice/s/memory.current": {Data: []byte("4096\n")},
		"sys/fs/cgroup/user.slice/s/memory.peak":    {Data: []byte("8192\n")},
		"sys/fs/cgroup/user.slice/s/cgroup.kill":    {},
	}
}

func TestMemoryCgroup(t *testing.T) {
	m := machine()
	tests := []struct {
		name       string
		mount      string
		candidates []string
		want       string
	}{
		{"the first candidate with memory", "/sys/fs/cgroup", []string{"/", "/nowhere", "/user.slice/s"}, "/user.slice/s"},
		{"else a top-level cgroup with memory", "/sys/fs/cgroup", []string{"/nowhere"}, "/user.slice"},
		{"no cgroup2 mount", "", []string{"/user.slice"}, ""},
		{"nothing with memory", "/proc", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MemoryCgroup(m, tt.mount, tt.candidates...); got != tt.want {
				t.Errorf("MemoryCgroup = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKernelHas(t *testing.T) {
	m := machine()
	tests := []struct {
		name string
		k    Kernel
		f    Feature
		want Result
	}{
		{"a file seen in the cgroup", Kernel{FS: m, Mount: "/sys/fs/cgroup", Cgroup: "/user.slice", Release: "5.15.0"}, CgroupKill,
			Result{Supported: true, Known: true, Seen: "/user.slice"}},
		{"a file missing from the cgroup, whatever the release says", Kernel{FS: m, Mount: "/sys/fs/cgroup", Cgroup: "/user.slice", Release: "6.1.0"}, MemoryPeak,
			Result{Supported: false, Known: true, Seen: "/user.slice"}},
		{"no cgroup to look in: the release has it", Kernel{FS: m, Release: "6.1.0"}, MemoryPeak, Result{Supported: true, Known: true}},
		{"no cgroup to look in: the release lacks it", Kernel{FS: m, Release: "5.4.0-150-generic"}, CgroupKill, Result{Known: true}},
		{"no cgroup, no release", Kernel{FS: m}, MemoryPeak, Result{}},
		{"no file: by the release", Kernel{FS: m, Mount: "/sys/fs/cgroup", Cgroup: "/user.slice", Release: "5.6.19"}, CloneIntoCgroup, Result{Known: true}},
		{"a systemd feature is not the kernel's", Kernel{FS: m, Release: "6.1.0"}, ScopeOOMPolicy, Result{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.k.Has(tt.f); got != tt.want {
				t.Errorf("Has(%s) = %+v, want %+v", tt.f, got, tt.want)
			}
		})
	}
}
