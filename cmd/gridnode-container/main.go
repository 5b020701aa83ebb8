// gridnode-container is the container helper beside /init: runc's
// libcontainer with its C nsenter and libseccomp, kept out of the pure-Go
// node program. See package shim.
package main

import (
	"os"

	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter"

	"github.com/gridnode/gridnode/workload/container/shim"
)

func init() {
	// libcontainer re-executes this program as "init" inside the new
	// namespaces (after nsenter's C constructor ran).
	if len(os.Args) > 1 && os.Args[1] == "init" {
		libcontainer.Init()
	}
}

func main() { os.Exit(shim.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
