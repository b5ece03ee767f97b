package policy_test

import (
	"fmt"
	"strings"

	"github.com/boxrun/boxrun/policy"
)

// A project file tweaks the built-in tests policy; a --set override and the
// memory size of the machine finish the job.
func ExampleStack_Resolve() {
	project, err := policy.Parse(".boxrun.toml", strings.NewReader(`
[policies.tests]
extends = "tests"    # the built-in one
memory.max = "50%"
memory.high = "60%"  # above memory.max: capped
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	stack := &policy.Stack{Files: []*policy.File{project, policy.Builtin()}}
	r, err := stack.Resolve("tests", []string{"pids.max=1024"}, policy.Env{MemoryBytes: 16 << 30})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("memory.max", policy.FormatBytes(*r.MemoryMax), "from", r.Origins["memory.max"])
	fmt.Println("memory.high", policy.FormatBytes(*r.MemoryHigh), "from", r.Origins["memory.high"])
	fmt.Println("pids.max", *r.PidsMax, "from", r.Origins["pids.max"])
	fmt.Println("cpu.weight", *r.CPUWeight, "from", r.Origins["cpu.weight"])
	for _, n := range r.Notes {
		fmt.Println("note:", n)
	}
	// Output:
	// memory.max 8G from .boxrun.toml:4
	// memory.high 8G from .boxrun.toml:5
	// pids.max 1024 from --set
	// cpu.weight 50 from built-in
	// note: memory.high 60% = 9.6G (.boxrun.toml:5) is above memory.max 50% = 8G (.boxrun.toml:4); using 8G for memory.high
}

func ExampleParse_error() {
	_, err := policy.Parse("bad.toml", strings.NewReader(`
[policies.tests]
memory.max = "12Q"
`))
	fmt.Println(err)
	// Output:
	// bad.toml:3: memory.max: "12Q" is not a size (use 512M, 8G, 60% or max)
}
