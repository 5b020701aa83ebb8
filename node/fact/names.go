package fact

// The name of each fact: the file NAME.json in the fact folder. A module's
// fact carries the module's name, and the module is ready when it publishes
// it.
const (
	NameConfig        = "config"     // node/config.Node, by PID 1
	NameColdplug      = "coldplug"   // Coldplug, by PID 1
	NameBootMedium    = "bootmedium" // BootMedium, by PID 1
	NameModules       = "modules"    // Modules, by PID 1's supervisor
	NameConsole       = "console"
	NameHardware      = "hardware"
	NameStorage       = "storage"
	NameIdentity      = "identity"
	NameNetwork       = "network"
	NameNetworkStatus = "network-status"
	NameRegistrar     = "registrar"
	NameWorkloads     = "workloads"
	NameUpgrade       = "upgrade"
)
