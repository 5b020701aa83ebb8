// Command testinit is the /init of the boot-medium tests: it says hello, shows
// the kernel command line and powers the machine off.
package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	os.Mkdir("/proc", 0o555)
	if err := unix.Mount("proc", "/proc", "proc", 0, ""); err != nil {
		fmt.Println("testinit: mount /proc:", err)
	}
	cmdline, _ := os.ReadFile("/proc/cmdline")
	fmt.Printf("hello from init\ncmdline: %s\n", cmdline)
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}
