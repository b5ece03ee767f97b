package doctor

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestCheckSignalTracer(t *testing.T) {
	active := fakeSystemd{props: map[string]string{"system boxrun-signals.service ActiveState": "active"}}
	tests := []struct {
		name    string
		fs      fstest.MapFS
		systemd SystemdProbe
		status  CheckStatus
		has     string
	}{
		{"records for this user", fstest.MapFS{"run/boxrun/signals/1000/signals.jsonl": {}}, nil, CheckOK, "records for you (/run/boxrun/signals/1000)"},
		{"another user's records only", fstest.MapFS{"run/boxrun/signals/1001/signals.jsonl": {}}, fakeSystemd{}, CheckWarn, "sudo boxrun install signal-tracer"},
		{"running, nothing recorded for this user yet", fstest.MapFS{}, active, CheckOK, "boxrun-signals.service is active"},
		{"no tracer, no systemd", fstest.MapFS{}, nil, CheckWarn, "not who sent it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &checker{m: &Machine{FS: tt.fs, UID: 1000, Systemd: tt.systemd}, ctx: context.Background(), opt: Options{Timeout: time.Second}}
			c := d.checkSignalTracer()
			if c.ID != "signal-tracer" || c.Status != tt.status || !strings.Contains(c.Summary+" "+c.Fix, tt.has) {
				t.Errorf("check %+v; want status %v saying %q", c, tt.status, tt.has)
			}
		})
	}
}
