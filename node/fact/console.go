package fact

// Console is the fact "console", published once the status endpoint listens.
type Console struct {
	StatusAddr string `json:"status_addr"`
}
