package container

import (
	"os"
	"reflect"
	"testing"
	"testing/fstest"
)

func TestDetectContainer(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	flatpakInfo := "[Application]\nname=com.visualstudio.code\nruntime=runtime/org.freedesktop.Sdk/x86_64/23.08\n\n[Session Bus Policy]\n"
	tests := []struct {
		name   string
		files  fstest.MapFS
		env    map[string]string
		onPath []string
		want   Container
	}{
		{"host", fstest.MapFS{}, nil, []string{"host-spawn"}, Container{}},
		{"flatpak VS Code allowed to reach the host", fstest.MapFS{".flatpak-info": file(flatpakInfo + "org.freedesktop.Flatpak=talk\n")}, nil, []string{"flatpak-spawn"},
			Container{Kind: "flatpak", Name: "com.visualstudio.code", Crossing: []string{"flatpak-spawn", "--host"}}},
		{"flatpak without the permission", fstest.MapFS{".flatpak-info": file(flatpakInfo)}, nil, []string{"flatpak-spawn"},
			Container{Kind: "flatpak", Name: "com.visualstudio.code"}},
		{"distrobox", fstest.MapFS{"run/.containerenv": file("engine=\"podman-4.9.3\"\nname=\"dev\"\n")}, map[string]string{"CONTAINER_ID": "dev"},
			[]string{"host-spawn", "distrobox-host-exec"}, Container{Kind: "distrobox", Name: "dev", Crossing: []string{"distrobox-host-exec"}}},
		{"toolbox", fstest.MapFS{"run/.containerenv": file("name=\"fedora-toolbox-40\"\n"), "run/.toolboxenv": file("")}, nil,
			[]string{"flatpak-spawn"}, Container{Kind: "toolbox", Name: "fedora-toolbox-40", Crossing: []string{"flatpak-spawn", "--host"}}},
		{"plain podman, nothing crosses", fstest.MapFS{"run/.containerenv": file("name=\"ci\"\n")}, nil, nil, Container{Kind: "podman", Name: "ci"}},
		{"docker", fstest.MapFS{".dockerenv": file("")}, nil, []string{"host-spawn"}, Container{Kind: "docker"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			lookPath := func(name string) (string, error) {
				for _, p := range tt.onPath {
					if p == name {
						return "/usr/bin/" + name, nil
					}
				}
				return "", os.ErrNotExist
			}
			if got := Detect(tt.files, getenv, lookPath); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCrossArgv(t *testing.T) {
	args := []string{"--policy", "tests", "--", "cargo", "test"}
	got := CrossArgv(Container{Kind: "flatpak", Crossing: []string{"flatpak-spawn", "--host"}}, "/home/u/src", args)
	want := []string{"flatpak-spawn", "--host", "--watch-bus", "--directory=/home/u/src", "--env=BOXRUN_CROSSED=1", "boxrun", "--policy", "tests", "--", "cargo", "test"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("flatpak: %q", got)
	}
	got = CrossArgv(Container{Kind: "distrobox", Crossing: []string{"distrobox-host-exec"}}, "/x", args)
	if want := append([]string{"distrobox-host-exec", "boxrun"}, args...); !reflect.DeepEqual(got, want) {
		t.Errorf("distrobox: %q", got)
	}
}

func TestVisibleOnHost(t *testing.T) {
	host := t.TempDir() // stands for /run/host
	if err := os.MkdirAll(host+"/usr/bin", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(host+"/usr/bin/make", nil, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want bool
	}{
		{"/home/u/.cargo/bin/cargo", true}, // the shared home
		{"/home/uv/bin/x", false},          // a sibling of the home
		{"/usr/bin/make", true},            // also in the host's root
		{"/usr/bin/cargo", false},          // only inside the container
	}
	for _, tt := range tests {
		if got := visibleOnHost(tt.path, "/home/u", host); got != tt.want {
			t.Errorf("visibleOnHost(%s) = %v, want %v", tt.path, got, tt.want)
		}
	}
}
