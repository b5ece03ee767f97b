package systemd

import "testing"

func TestUnitOwner(t *testing.T) {
	tests := []struct {
		cg, unit, manager string
		uid               int
	}{
		{"/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-code-4242.scope", "app-gnome-code-4242.scope", "user", 1000},
		{"/user.slice/user-1000.slice/user@1000.service/app.slice", "app.slice", "user", 1000},
		{"/user.slice/user-1000.slice/user@1000.service", "user@1000.service", "system", -1},
		{"/user.slice/user-1000.slice/session-2.scope", "session-2.scope", "system", -1},
		{"/user.slice", "user.slice", "system", -1},
		{"/system.slice/boxrun-test.service", "boxrun-test.service", "system", -1},
		{"/itprot/editor", "", "", -1},
		{"/", "", "", -1},
		{"/.slice", "", "", -1},
	}
	for _, tt := range tests {
		unit, manager, uid := UnitOwner(tt.cg)
		if unit != tt.unit || manager != tt.manager || uid != tt.uid {
			t.Errorf("UnitOwner(%q) = %q, %q, %d; want %q, %q, %d", tt.cg, unit, manager, uid, tt.unit, tt.manager, tt.uid)
		}
	}
}

func TestUserManagerCgroup(t *testing.T) {
	tests := []struct {
		own  string
		uid  int
		want string
	}{
		{"/user.slice/user-1000.slice/user@1000.service/app.slice/app-foot-4242.scope", 1000, "/user.slice/user-1000.slice/user@1000.service"},
		{"/custom.slice/user@1000.service/app.slice/x.scope", 1000, "/custom.slice/user@1000.service"},
		{"/user.slice/user-1000.slice/session-3.scope", 1000, "/user.slice/user-1000.slice/user@1000.service"},
		{"/user.slice/user-10000.slice/user@10000.service/app.slice", 1000, "/user.slice/user-1000.slice/user@1000.service"},
		{"/", 0, "/user.slice/user-0.slice/user@0.service"},
		{"", 1000, "/user.slice/user-1000.slice/user@1000.service"},
	}
	for _, tt := range tests {
		if got := UserManagerCgroup(tt.own, tt.uid); got != tt.want {
			t.Errorf("UserManagerCgroup(%q, %d) = %q, want %q", tt.own, tt.uid, got, tt.want)
		}
	}
}
