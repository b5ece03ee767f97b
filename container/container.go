// Package container tells whether boxrun runs inside a container (flatpak,
// toolbox, distrobox, podman, docker) and how to cross to the host from it:
// a box needs the host's cgroup tree, which a container without its own
// cgroup namespace does not give. cmd/boxrun crosses; doctor reports it.
package container

import (
	"io/fs"
	"os"
	"strings"
)

// Container is what boxrun knows of the container it runs in, if any.
type Container struct {
	// Kind is "flatpak", "distrobox", "toolbox", "podman", "docker", or ""
	// outside a container.
	Kind string
	// Name is the container's or the flatpak application's name, if known.
	Name string
	// Crossing is the command that runs a program on the host from here
	// (e.g. ["host-spawn"], ["flatpak-spawn", "--host"]), nil when none is
	// available.
	Crossing []string
}

// String names the container for messages: "a distrobox container (dev)".
func (c Container) String() string {
	if c.Kind == "" {
		return "no container"
	}
	s := "a " + c.Kind + " container"
	if c.Kind == "flatpak" {
		s = "a flatpak sandbox"
	}
	if c.Name != "" {
		s += " (" + c.Name + ")"
	}
	return s
}

// CrossingCost is what one crossing to the host costs, as measured in the
// report of a distrobox user in shared/context: 120-140 ms and a few
// processes per crossing. boxrun crosses once per run, never per child.
const CrossingCost = "120-140 ms"

// Detect looks at the files and environment that container tools
// leave (fsys is the file system at "/"); lookPath finds the crossing
// tools (exec.LookPath, or a fake in tests).
func Detect(fsys fs.FS, getenv func(string) string, lookPath func(string) (string, error)) Container {
	exists := func(name string) bool { _, err := fs.Stat(fsys, name); return err == nil }
	var c Container
	switch {
	case exists(".flatpak-info"):
		c.Kind = "flatpak"
		info, _ := fs.ReadFile(fsys, ".flatpak-info")
		c.Name = iniValue(string(info), "Application", "name")
		// flatpak-spawn --host needs the app to talk to org.freedesktop.Flatpak.
		if strings.Contains(string(info), "org.freedesktop.Flatpak=talk") {
			c.Crossing = []string{"flatpak-spawn", "--host"}
		}
		if c.Crossing != nil {
			if _, err := lookPath("flatpak-spawn"); err != nil {
				c.Crossing = nil
			}
		}
		return c
	case exists("run/.containerenv") || getenv("CONTAINER_ID") != "":
		env, _ := fs.ReadFile(fsys, "run/.containerenv")
		c.Kind, c.Name = "podman", containerEnvField(string(env), "name")
		switch {
		case getenv("CONTAINER_ID") != "" || getenv("DISTROBOX_ENTER_PATH") != "":
			c.Kind = "distrobox"
			if id := getenv("CONTAINER_ID"); id != "" {
				c.Name = id
			}
		case exists("run/.toolboxenv"):
			c.Kind = "toolbox"
		}
	case exists(".dockerenv"):
		c.Kind = "docker"
		return c // no tool crosses out of a docker container
	default:
		return c
	}
	for _, tool := range [][]string{{"distrobox-host-exec"}, {"host-spawn"}, {"flatpak-spawn", "--host"}} {
		if _, err := lookPath(tool[0]); err == nil {
			c.Crossing = tool
			break
		}
	}
	return c
}

// CrossArgv is the command that runs boxrun with args on the host, from
// the working directory cwd, through the container's crossing tool.
func CrossArgv(c Container, cwd string, args []string) []string {
	argv := append([]string{}, c.Crossing...)
	if len(c.Crossing) > 0 && c.Crossing[0] == "flatpak-spawn" {
		argv = append(argv, "--watch-bus", "--directory="+cwd, "--env="+CrossedEnv+"=1")
	}
	return append(append(argv, "boxrun"), args...)
}

// VisibleOnHost reports whether the program at path (resolved inside the
// container) is the same file on the host: under the home directory the
// container shares, or present in the host's root mounted at /run/host.
func VisibleOnHost(path, home string) bool { return visibleOnHost(path, home, "/run/host") }

func visibleOnHost(path, home, hostRoot string) bool {
	if home != "" && home != "/" && strings.HasPrefix(path, strings.TrimSuffix(home, "/")+"/") {
		return true
	}
	_, err := os.Stat(hostRoot + path)
	return err == nil
}

// CrossedEnv is set for a boxrun that crossed to the host, so that it never
// crosses again.
const CrossedEnv = "BOXRUN_CROSSED"

// containerEnvField reads key="value" from /run/.containerenv.
func containerEnvField(data, key string) string {
	for _, line := range strings.Split(data, "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// iniValue reads key=value in [section] of an ini-style file.
func iniValue(data, section, key string) string {
	in := false
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			in = line == "["+section+"]"
			continue
		}
		if v, ok := strings.CutPrefix(line, key+"="); ok && in {
			return v
		}
	}
	return ""
}
