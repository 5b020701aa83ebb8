// Command gridnode builds, boots and serves gridnode images.
package main

import (
	"os"

	"github.com/gridnode/gridnode/cmd/gridnode/cli"
)

func main() { os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
