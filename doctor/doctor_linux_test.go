package doctor

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/boxrun/boxrun/box"
	"github.com/boxrun/boxrun/internal/machinetest"
	"github.com/boxrun/boxrun/policy"
	"github.com/boxrun/boxrun/protect"
)

// fakeSystemd answers doctor's D-Bus questions from maps.
type fakeSystemd struct {
	version map[bool]string   // by user: the manager's version; missing = unreachable
	props   map[string]string // "user|system unit prop" -> value
}

func (f fakeSystemd) Manager(_ context.Context, user bool) (string, error) {
	if v, ok := f.version[user]; ok {
		return v, nil
	}
	return "", errors.New("no systemd manager socket at /run/user/1000/systemd/private")
}

func (f fakeSystemd) UnitProperty(_ context.Context, user bool, unit, name string) (string, error) {
	which := "system"
	if user {
		which = "user"
	}
	if v, ok := f.props[which+" "+unit+" "+name]; ok {
		return v, nil
	}
	return "", errors.New("no such unit or property")
}

func TestDoctor(t *testing.T) {
	st := &policy.Stack{Files: []*policy.File{policy.Builtin()}}
	pol, err := st.Resolve("tests", nil, policy.Env{MemoryBytes: 16 << 30})
	if err != nil {
		t.Fatal(err)
	}
	groups, err := protect.ResolveGroups(st, pol.Protect, policy.Env{MemoryBytes: 16 << 30})
	if err != nil {
		t.Fatal(err)
	}
	desktopSystemd := fakeSystemd{
		version: map[bool]string{true: "255.4-1.fc41"},
		props: map[string]string{
			"system systemd-oomd.service ActiveState":                 "active",
			"system user@1000.service ManagedOOMMemoryPressure":       "kill",
			"system -.slice ManagedOOMSwap":                           "auto",
			"user app-gnome-code-4242.scope ManagedOOMMemoryPressure": "auto",
		},
	}
	type want struct {
		status CheckStatus
		has    []string // substrings of summary, fix and details
	}
	tests := []struct {
		name     string
		fixture  string
		uid      int
		kernel   string
		env      map[string]string
		systemd  SystemdProbe
		writable []string
		onPath   []string // commands LookPath finds
		ok       bool
		want     map[string]want
		absent   []string
		// never are substrings no check may say: a fix that cannot help
		// on this host.
		never []string
	}{
		{
			name: "unified systemd desktop", fixture: "desktop.txt", uid: 1000, kernel: "6.11.4-301.fc41.x86_64",
			env: map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000"}, systemd: desktopSystemd, ok: true,
			want: map[string]want{
				"versions":          {CheckOK, []string{"versions: Linux 6.11.4-301.fc41.x86_64, systemd 255.4-1.fc41 (user manager)"}},
				"cgroup2":           {CheckOK, []string{"unified hierarchy at /sys/fs/cgroup", "memory"}},
				"systemd":           {CheckOK, []string{"user manager reachable (systemd 255)", "/run/user/1000/systemd/private"}},
				"scope_oompolicy":   {CheckOK, []string{"OOMPolicy on a scope: systemd 255.4-1.fc41 has it (252.5+)"}},
				"backend":           {CheckOK, []string{"transient scopes"}},
				"controllers":       {CheckWarn, []string{"cpu memory pids", "no io", "io.weight", "Delegate=cpu cpuset io memory pids"}},
				"recursiveprot":     {CheckOK, []string{"is on"}},
				"swap":              {CheckOK, []string{"8.0G", "zram0"}},
				"psi":               {CheckOK, nil},
				"memory.peak":       {CheckOK, []string{"vte-spawn-1.scope"}},
				"cgroup.kill":       {CheckOK, nil},
				"clone_into_cgroup": {CheckOK, []string{"5.7"}},
				"container":         {CheckOK, []string{"not inside"}},
				"protect:editors": {CheckWarn, []string{
					"2 processes (code) in app-gnome-code-4242.scope: oom_score_adj 200..300, memory.low 0, effective 0 of 2G",
					"boxrun protect editors", "sudo systemctl set-property user.slice MemoryLow=2G", "not fully protected",
				}},
				"systemd-oomd": {CheckWarn, []string{"user@1000.service has ManagedOOMMemoryPressure=kill", "sudo systemctl set-property user@1000.service ManagedOOMMemoryPressure=auto"}},
			},
		},
		{
			name: "this hybrid build machine", fixture: "hybrid.txt", uid: 0, kernel: "6.18.44-fc-v782",
			env: map[string]string{}, systemd: fakeSystemd{}, ok: false,
			want: map[string]want{
				"versions":        {CheckOK, []string{"versions: Linux 6.18.44-fc-v782, no systemd manager answered"}},
				"cgroup2":         {CheckFail, []string{"hybrid", "/sys/fs/cgroup/unified", "systemd.unified_cgroup_hierarchy=1"}},
				"systemd":         {CheckFail, []string{"system manager not reachable", "boot with systemd"}},
				"backend":         {CheckFail, []string{"falls back to none", `policy "tests"`, "unified cgroup v2"}},
				"recursiveprot":   {CheckWarn, []string{"protects nothing"}},
				"swap":            {CheckWarn, []string{"no swap", "zram"}},
				"psi":             {CheckOK, nil},
				"memory.peak":     {CheckOK, []string{"Linux 6.18.44-fc-v782 has it"}},
				"cgroup.kill":     {CheckOK, nil},
				"container":       {CheckOK, nil},
				"protect:editors": {CheckOK, []string{"no process of yours"}},
				"systemd-oomd":    {CheckOK, []string{"not running"}},
			},
			absent: []string{"controllers", "scope_oompolicy"},
			never:  []string{box.ParentEnv},
		},
		{
			name: "a cgroup-less container", fixture: "container.txt", uid: 1000, kernel: "6.8.0",
			env: map[string]string{"CONTAINER_ID": "bootc-dev", "XDG_RUNTIME_DIR": "/run/user/1000"}, systemd: fakeSystemd{}, ok: false,
			onPath: []string{"host-spawn", "distrobox-host-exec"},
			want: map[string]want{
				"cgroup2":   {CheckFail, []string{"no cgroup file system", "--cgroupns=private"}},
				"systemd":   {CheckFail, []string{"user manager not reachable", "loginctl enable-linger"}},
				"backend":   {CheckFail, []string{"falls back to none"}},
				"psi":       {CheckWarn, []string{"psi=1"}},
				"container": {CheckWarn, []string{"distrobox container (bootc-dev)", "crosses once to the host's boxrun through distrobox-host-exec", "120-140 ms per run, never per child"}},
				// Memory features cannot be seen without a cgroup: judged by the kernel version.
				"memory.peak":     {CheckOK, []string{"no cgroup to look in"}},
				"protect:editors": {CheckOK, nil},
			},
			absent: []string{"controllers"},
			never:  []string{box.ParentEnv},
		},
		{
			name: "a cgroup-less container without XDG_RUNTIME_DIR", fixture: "container.txt", uid: 1000, kernel: "5.4.0-150-generic",
			env: map[string]string{}, systemd: nil, ok: false,
			want: map[string]want{
				"systemd":           {CheckFail, []string{"XDG_RUNTIME_DIR is not set"}},
				"container":         {CheckWarn, []string{"podman container (bootc-dev)", "no tool crosses to the host", "--cgroupns=private"}},
				"memory.peak":       {CheckWarn, []string{"lacks it (5.19+)"}},
				"cgroup.kill":       {CheckWarn, []string{"lacks it (5.14+)", "signalling each process"}},
				"clone_into_cgroup": {CheckOK, nil},
			},
		},
		{
			name: "a VM without systemd (cgroupfs backend)", fixture: "cgroupfs-vm.txt", uid: 0, kernel: "6.1.0-26-cloud-amd64",
			env: map[string]string{}, systemd: fakeSystemd{}, writable: []string{"sys/fs/cgroup/cgroup.subtree_control"}, ok: true,
			want: map[string]want{
				"versions":      {CheckOK, []string{"versions: Linux 6.1.0-26-cloud-amd64, no systemd manager answered"}},
				"cgroup2":       {CheckOK, nil},
				"systemd":       {CheckWarn, []string{"not reachable", "cgroupfs backend"}},
				"backend":       {CheckOK, []string{"cgroups under /"}},
				"controllers":   {CheckOK, []string{"available under /", "memory", "pids", "cpu", "io"}},
				"recursiveprot": {CheckOK, nil},
				"memory.peak":   {CheckOK, []string{"no cgroup to look in"}},
			},
			absent: []string{"scope_oompolicy"},
		},
		{
			name: "Debian 12 as root: the system manager's 252 with the stable backport", fixture: "desktop.txt", uid: 0, kernel: "6.1.0-41-cloud-amd64",
			env: map[string]string{}, systemd: fakeSystemd{version: map[bool]string{false: "252.39-1~deb12u1"}}, ok: true,
			want: map[string]want{
				"versions":        {CheckOK, []string{"versions: Linux 6.1.0-41-cloud-amd64, systemd 252.39-1~deb12u1 (system manager)"}},
				"systemd":         {CheckOK, []string{"system manager reachable (systemd 252)"}},
				"scope_oompolicy": {CheckOK, []string{"systemd 252.39-1~deb12u1 has it (252.5+)"}},
			},
		},
		{
			name: "a 252 from before the backport", fixture: "desktop.txt", uid: 0, kernel: "6.1.0",
			env: map[string]string{}, systemd: fakeSystemd{version: map[bool]string{false: "252.4-1"}}, ok: true,
			want: map[string]want{
				"versions":        {CheckOK, []string{"systemd 252.4-1 (system manager)"}},
				"scope_oompolicy": {CheckWarn, []string{"systemd 252.4-1 predates it (252.5+)", "stop the whole run", "upgrade systemd to 252.5 or later"}},
			},
		},
		{
			name: "a manager that answers without a version", fixture: "desktop.txt", uid: 0, kernel: "",
			env: map[string]string{}, systemd: fakeSystemd{version: map[bool]string{false: ""}}, ok: true,
			want: map[string]want{
				"versions":        {CheckOK, []string{"versions: kernel release unknown, systemd system manager version unknown"}},
				"scope_oompolicy": {CheckOK, []string{"systemd version unknown", "a run tries it (252.5+)"}},
			},
		},
		{
			name: "a container with its own cgroup namespace, processes in its root", fixture: "cgroupns.txt", uid: 0, kernel: "6.8.0",
			env: map[string]string{}, systemd: fakeSystemd{}, writable: []string{"sys/fs/cgroup/cgroup.subtree_control"}, ok: false,
			want: map[string]want{
				"cgroup2": {CheckOK, nil},
				"systemd": {CheckFail, []string{"not reachable"}},
				"backend": {CheckFail, []string{"falls back to none", "root of this container's cgroup namespace", "holds 3 processes", "no-internal-processes",
					"mkdir /sys/fs/cgroup/init", box.ParentEnv + "=/sys/fs/cgroup"}},
				"container": {CheckWarn, []string{"podman container (ci-runner)", box.ParentEnv + "=/sys/fs/cgroup"}},
			},
			absent: []string{"controllers"},
			never:  []string{"--cgroupns=private", "cgroups under /"},
		},
		{
			name: "the same VM when the root cgroup is not writable", fixture: "cgroupfs-vm.txt", uid: 1000, kernel: "6.1.0",
			env: map[string]string{}, systemd: fakeSystemd{}, ok: false,
			want: map[string]want{
				"backend": {CheckFail, []string{"delegated to you", box.ParentEnv}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Machine{
				FS:     machinetest.MustLoad(t, tt.fixture),
				Getenv: func(k string) string { return tt.env[k] },
				UID:    tt.uid,
				Kernel: tt.kernel,
				Writable: func(name string) error {
					for _, w := range tt.writable {
						if w == name {
							return nil
						}
					}
					return os.ErrPermission
				},
				Systemd: tt.systemd,
				LookPath: func(name string) (string, error) {
					for _, p := range tt.onPath {
						if p == name {
							return "/usr/bin/" + name, nil
						}
					}
					return "", os.ErrNotExist
				},
			}
			checks := Run(context.Background(), m, Options{Policy: pol, Groups: groups, Others: protect.OtherGroupNames(st, pol.Protect)})
			byID := map[string]Check{}
			for _, c := range checks {
				if _, dup := byID[c.ID]; dup {
					t.Errorf("check %s twice", c.ID)
				}
				byID[c.ID] = c
				if c.Status == CheckFail && c.Fix == "" {
					t.Errorf("%s fails without a fix: %s", c.ID, c.Summary)
				}
				if c.Summary == "" || strings.HasSuffix(c.Summary, ".") {
					t.Errorf("%s: summary %q should be one line without a period", c.ID, c.Summary)
				}
			}
			for id, w := range tt.want {
				c, ok := byID[id]
				if !ok {
					t.Errorf("no %s check", id)
					continue
				}
				text := c.Summary + "\n" + c.Fix + "\n" + strings.Join(c.Details, "\n")
				if c.Status != w.status {
					t.Errorf("%s: %s, want %s\n%s", id, c.Status, w.status, text)
				}
				for _, s := range w.has {
					if !strings.Contains(text, s) {
						t.Errorf("%s does not say %q:\n%s", id, s, text)
					}
				}
			}
			for _, c := range checks {
				for _, s := range tt.never {
					if text := c.Summary + "\n" + c.Fix + "\n" + strings.Join(c.Details, "\n"); strings.Contains(text, s) {
						t.Errorf("%s says %q, which cannot help on this host:\n%s", c.ID, s, text)
					}
				}
			}
			for _, id := range tt.absent {
				if _, ok := byID[id]; ok {
					t.Errorf("unexpected %s check: %+v", id, byID[id])
				}
			}
			if got := OK(checks); got != tt.ok {
				t.Errorf("OK = %v, want %v", got, tt.ok)
				for _, c := range checks {
					t.Logf("%s %s: %s", c.Status.Symbol(), c.ID, c.Summary)
				}
			}
		})
	}
}
