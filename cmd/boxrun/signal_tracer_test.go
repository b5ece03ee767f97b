package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestTracerUnitIsContrib(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("..", "..", "contrib", "systemd", tracerUnitName))
	if err != nil {
		t.Fatal(err)
	}
	if got := tracerUnit("/usr/local/bin/boxrun"); got != string(want) {
		t.Errorf("contrib/systemd/%s and the unit boxrun install writes differ; keep tracerUnitTemplate and the file equal:\n%s", tracerUnitName, got)
	}
}
