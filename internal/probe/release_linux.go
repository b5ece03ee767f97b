package probe

import "golang.org/x/sys/unix"

// Release is the running kernel's release as uname -r prints it
// ("6.1.0-13-amd64"), "" when uname fails. Doctor reports it and judges by
// it; the run report names it.
func Release() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}
