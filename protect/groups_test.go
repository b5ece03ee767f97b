package protect

import (
	"reflect"
	"strings"
	"testing"

	"github.com/boxrun/boxrun/policy"
)

// gib is a GiB in bytes.
const gib = uint64(1 << 30)

func TestResolveGroups(t *testing.T) {
	st := &policy.Stack{Files: []*policy.File{policy.Builtin()}}
	groups, err := ResolveGroups(st, []string{"editors", "language-servers"}, policy.Env{MemoryBytes: 16 * gib})
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 || *groups[0].MemoryLow != 2*gib || *groups[0].OOMScoreAdj != -500 || groups[1].Name != "language-servers" {
		t.Errorf("got %+v", groups)
	}
	if _, err := ResolveGroups(st, []string{"emacs"}, policy.Env{}); err == nil || !strings.Contains(err.Error(), "known: editors, language-servers") {
		t.Errorf("unknown group: %v", err)
	}
	others := OtherGroupNames(st, []string{"editors"})
	if !reflect.DeepEqual(others, []string{"clangd", "gopls", "pyright", "rust-analyzer", "tsserver", "typescript-language-server"}) {
		t.Errorf("others: %q", others)
	}
}
