// Command crproxy is the resource proxy; see internal/cli for its verbs.
package main

import (
	"fmt"
	"os"

	"github.com/crproxy/crproxy/internal/cli"
)

func main() {
	if err := cli.NewCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
