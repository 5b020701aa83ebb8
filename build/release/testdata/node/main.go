// Command node stands in for the node program in the SBOM test: it links a
// module dependency so its build information lists one.
package main

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
)

func main() {
	fmt.Println(name.DefaultRegistry)
}
