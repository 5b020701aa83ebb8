package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"
)

// qmp is a minimal QEMU Machine Protocol client: one command at a time,
// events are skipped.
type qmp struct {
	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
}

type qmpReply struct {
	QMP    json.RawMessage `json:"QMP"`
	Event  string          `json:"event"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
}

// newQMP reads the greeting and leaves negotiation mode.
func newQMP(conn net.Conn, timeout time.Duration) (*qmp, error) {
	q := &qmp{conn: conn, r: bufio.NewReader(conn)}
	conn.SetDeadline(time.Now().Add(timeout))
	defer conn.SetDeadline(time.Time{})
	var greeting qmpReply
	if err := q.read(&greeting); err != nil {
		return nil, fmt.Errorf("qmp greeting: %w", err)
	}
	if greeting.QMP == nil {
		return nil, fmt.Errorf("qmp greeting: unexpected message")
	}
	if _, err := q.exec("qmp_capabilities", nil); err != nil {
		return nil, err
	}
	return q, nil
}

func (q *qmp) read(v *qmpReply) error {
	line, err := q.r.ReadBytes('\n')
	if err != nil {
		return err
	}
	return json.Unmarshal(line, v)
}

func (q *qmp) exec(cmd string, args any) (json.RawMessage, error) {
	msg := map[string]any{"execute": cmd}
	if args != nil {
		msg["arguments"] = args
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	for {
		var r qmpReply
		if err := q.read(&r); err != nil {
			return nil, fmt.Errorf("qmp %s: %w", cmd, err)
		}
		if r.Event != "" {
			continue
		}
		if r.Error != nil {
			return nil, fmt.Errorf("qmp %s: %s: %s", cmd, r.Error.Class, r.Error.Desc)
		}
		return r.Return, nil
	}
}

// QMP runs a QMP command (https://qemu.org/docs/master/interop/qemu-qmp-ref.html)
// with args (nil or a JSON-marshalable value) and returns its "return" value.
func (vm *VM) QMP(ctx context.Context, cmd string, args any) (json.RawMessage, error) {
	if vm.qmp == nil {
		return nil, fmt.Errorf("qemu: qmp %s: VM has no QMP connection", cmd)
	}
	vm.qmp.mu.Lock()
	defer vm.qmp.mu.Unlock()
	if d, ok := ctx.Deadline(); ok {
		vm.qmp.conn.SetDeadline(d)
		defer vm.qmp.conn.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { vm.qmp.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	return vm.qmp.exec(cmd, args)
}

// Reset resets the VM like its reset button (QMP system_reset).
func (vm *VM) Reset(ctx context.Context) error {
	_, err := vm.QMP(ctx, "system_reset", nil)
	return err
}

// Powerdown presses the ACPI power button (QMP system_powerdown); the guest
// decides what to do with it.
func (vm *VM) Powerdown(ctx context.Context) error {
	_, err := vm.QMP(ctx, "system_powerdown", nil)
	return err
}

// SendKeys presses keys together, named as QEMU's QKeyCode, e.g.
// SendKeys(ctx, "ctrl", "alt", "delete").
func (vm *VM) SendKeys(ctx context.Context, keys ...string) error {
	type key struct {
		Type string `json:"type"`
		Data string `json:"data"`
	}
	ks := make([]key, len(keys))
	for i, k := range keys {
		ks[i] = key{Type: "qcode", Data: k}
	}
	_, err := vm.QMP(ctx, "send-key", map[string]any{"keys": ks})
	return err
}
