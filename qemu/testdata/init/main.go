// Command init is a tiny PID 1 for the qemu package's tests: it prints a
// line on the console, echoes lines it reads on ttyS1 until "poweroff", and
// powers the VM off.
package main

import (
	"bufio"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	fmt.Println("hello from init")
	if err := unix.Mount("devtmpfs", "/dev", "devtmpfs", 0, ""); err != nil {
		fmt.Println("mount /dev:", err)
	}
	if f, err := os.OpenFile("/dev/ttyS1", os.O_RDWR, 0); err != nil {
		fmt.Println("open ttyS1:", err)
	} else {
		// No echo, so the test reads only what init writes.
		if t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			t.Lflag &^= unix.ECHO
			unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t)
		}
		fmt.Fprintln(f, "ttyS1 ready")
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if sc.Text() == "poweroff" {
				break
			}
			fmt.Fprintf(f, "echo: %s\n", sc.Text())
		}
	}
	fmt.Println("powering off")
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}
