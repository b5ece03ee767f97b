// Package packaging holds what makes boxrun's .deb and .rpm (issue #19):
// nfpm.yaml, the nfpm configuration; version, the script that turns git
// describe into a version dpkg and rpm both take; and the test that runs
// make package, installs the .deb into a scratch root with dpkg and checks
// every file of both packages. The Makefile's package target ties them
// together. There is no Go API here: the package exists for its test.
package packaging
