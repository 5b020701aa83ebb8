package deployment

import (
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Size is a number of bytes, written in YAML as 64Mi, 1Gi, 500M or a plain
// number of bytes, and in JSON as the number of bytes.
type Size uint64

var sizeUnits = map[string]int64{
	"": 1, "B": 1,
	"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
	"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50,
}

var sizeRe = regexp.MustCompile(`^([0-9]{1,20})(\.[0-9]{1,9})? ?([KMGTP]i|[kKMGTP]|B)?$`)

// ParseSize reads a size: a number, maybe with a decimal part, and a unit
// (Ki Mi Gi Ti Pi: powers of 1024; k M G T P: of 1000; B or none: bytes).
// A fraction of a byte is rounded up.
func ParseSize(s string) (Size, error) {
	m := sizeRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size: want e.g. 64Mi, 1Gi, 500M or a number of bytes", s)
	}
	r, ok := new(big.Rat).SetString(m[1] + m[2])
	if !ok {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(sizeUnits[m[3]]))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if new(big.Rat).SetInt(n).Cmp(r) < 0 {
		n.Add(n, big.NewInt(1))
	}
	if !n.IsUint64() || n.Uint64() > uint64(MaxSize) {
		return 0, fmt.Errorf("%q is too large: at most %s", s, MaxSize)
	}
	return Size(n.Uint64()), nil
}

// String writes the size with the largest binary unit that divides it
// (64Mi, 1536Mi, 1000), so that ParseSize reads back the same number.
func (s Size) String() string {
	for _, u := range []string{"Pi", "Ti", "Gi", "Mi", "Ki"} {
		if d := uint64(sizeUnits[u]); s != 0 && uint64(s)%d == 0 {
			return strconv.FormatUint(uint64(s)/d, 10) + u
		}
	}
	return strconv.FormatUint(uint64(s), 10)
}

// UnmarshalYAML reads a size from a scalar.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeErr(n, "want a size such as 64Mi or 1Gi")
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		return typeErr(n, "%v", err)
	}
	*s = v
	return nil
}

// MilliCPU is CPU in thousandths of a CPU, written in YAML as a decimal
// number of CPUs (0.5, 2, 0.125) or in millicores (500m), and in JSON as
// the number of thousandths.
type MilliCPU uint64

var cpuRe = regexp.MustCompile(`^(?:([0-9]{1,7})(?:\.([0-9]{1,3}))?|([0-9]{1,10})m)$`)

// ParseCPU reads a CPU amount: 0.5, 2, 0.125 or 500m.
func ParseCPU(s string) (MilliCPU, error) {
	m := cpuRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a CPU amount: want a number of CPUs with at most 3 decimals (0.5, 2) or millicores (500m)", s)
	}
	if m[3] != "" {
		v, _ := strconv.ParseUint(m[3], 10, 64)
		return MilliCPU(v), nil
	}
	whole, _ := strconv.ParseUint(m[1], 10, 64)
	frac := m[2] + strings.Repeat("0", 3-len(m[2]))
	f, _ := strconv.ParseUint(frac, 10, 64)
	return MilliCPU(whole*1000 + f), nil
}

// String writes the amount as a decimal number of CPUs.
func (c MilliCPU) String() string {
	s := strconv.FormatUint(uint64(c)/1000, 10)
	if f := uint64(c) % 1000; f != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%03d", f), "0")
	}
	return s
}

// UnmarshalYAML reads a CPU amount from a scalar.
func (c *MilliCPU) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeErr(n, "want a number of CPUs such as 0.5 or 2")
	}
	v, err := ParseCPU(n.Value)
	if err != nil {
		return typeErr(n, "%v", err)
	}
	*c = v
	return nil
}

// Port is a published port: Node on the node's addresses forwards to
// Container in the deployment's network. YAML "NODE:CONTAINER[/PROTO]" or
// "PORT[/PROTO]" (the same on both sides); PROTO is tcp (default) or udp.
type Port struct {
	Node      uint16 `json:"node"`
	Container uint16 `json:"container"`
	Protocol  string `json:"protocol"`
}

// ParsePort reads "8080:80/tcp", "8080:80", "8080" or "53/udp".
func ParsePort(s string) (Port, error) {
	bad := fmt.Errorf("%q is not a port: want NODE:CONTAINER[/tcp|/udp], e.g. 8080:80/tcp", s)
	ports, proto, hasProto := strings.Cut(strings.TrimSpace(s), "/")
	p := Port{Protocol: "tcp"}
	if hasProto {
		p.Protocol = proto
	}
	nodeS, contS, two := strings.Cut(ports, ":")
	if !two {
		contS = nodeS
	}
	n, err1 := strconv.ParseUint(nodeS, 10, 16)
	c, err2 := strconv.ParseUint(contS, 10, 16)
	if err1 != nil || err2 != nil {
		return Port{}, bad
	}
	p.Node, p.Container = uint16(n), uint16(c)
	if err := p.check(); err != nil {
		return Port{}, fmt.Errorf("%q: %v", s, err)
	}
	return p, nil
}

func (p Port) check() error {
	if p.Node == 0 || p.Container == 0 {
		return fmt.Errorf("port 0: want 1 to 65535")
	}
	if p.Protocol != "tcp" && p.Protocol != "udp" {
		return fmt.Errorf("protocol %q: allowed values are tcp, udp", p.Protocol)
	}
	return nil
}

// String writes the port as the file does: 8080:80/tcp.
func (p Port) String() string { return fmt.Sprintf("%d:%d/%s", p.Node, p.Container, p.Protocol) }

// UnmarshalYAML reads a port from a scalar.
func (p *Port) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeErr(n, `want a port as a string, e.g. "8080:80/tcp"`)
	}
	v, err := ParsePort(n.Value)
	if err != nil {
		return typeErr(n, "%v", err)
	}
	*p = v
	return nil
}

// typeErr is an error of a value at n, in the form yaml.v3 gathers (with
// its line), so that decodeYAML reports it as file:line.
func typeErr(n *yaml.Node, format string, a ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, fmt.Sprintf(format, a...))}}
}
