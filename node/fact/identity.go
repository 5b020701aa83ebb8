package fact

// Identity is the fact "identity", published by the identity module.
type Identity struct {
	// PublicKey is the node's ed25519 public key, standard base64.
	PublicKey string `json:"public_key"`
	// Ephemeral is true when the key lives for this boot only.
	Ephemeral bool `json:"ephemeral"`
	// StateDir is where the key (and the registrar's ids) persist, "" when
	// ephemeral.
	StateDir string `json:"state_dir"`
	// Source is created, loaded, restored-from-mirror or ephemeral.
	Source string `json:"source"`
	// NodeHint is the first 8 hex digits of sha256(public key), to tell
	// nodes apart on a console.
	NodeHint string `json:"node_hint"`
	// Warning says why the key is ephemeral or what was repaired.
	Warning string `json:"warning,omitempty"`
}
