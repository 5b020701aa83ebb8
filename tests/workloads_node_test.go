package tests

// Workloads end to end (issue 12): a node booted in QEMU against the
// project's registrar pulls OCI images from go-containerregistry's
// in-process registry on the host and runs them; the host deploys with the
// real CLI through a forward to the node's API and fetches a page through
// the published port. Two boots of one node: the second after a power cut,
// with the registry and the registrar stopped and the guest's network
// restricted.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/gridnode/gridnode/cmd/gridnode/cli"
	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/grid/farm"
	"github.com/gridnode/gridnode/internal/need"
	"github.com/gridnode/gridnode/internal/testutil"
	"github.com/gridnode/gridnode/node/deployment"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/qemu"
	"github.com/gridnode/gridnode/workload/image/imagetest"
	"github.com/gridnode/gridnode/workload/nodeclient"
)

// webScript is the web workload: it prints what it sees from inside its
// container to its log (read back with `gridnode logs`), keeps a token on
// its volume, and serves /www.
const webScript = `
echo "check: pid1 $(tr '\0' ' ' < /proc/1/cmdline)"
echo "check: procs $(ls -d /proc/[0-9]* | wc -l)"
ps
echo "check: uid_map $(cat /proc/self/uid_map)"
echo "check: busybox owner $(stat -c %u /bin/busybox)"
if echo "web:x:1:1::/:/bin/sh" >> /etc/passwd; then echo "check: image file writable"; fi
if [ -e /fresh ]; then echo "check: writable layer kept"; fi
touch /fresh
httpd -p 127.0.0.1:8081 -h /www
for a in $PROBES; do
  if nc -w 3 ${a%:*} ${a#*:} < /dev/null > /dev/null 2>&1; then echo "check: reached $a"; else echo "check: unreachable $a"; fi
done
if [ ! -e /data/token ]; then echo "$TOKEN" > /data/token; sync; fi
echo "check: volume $(cat /data/token)"
exec httpd -f -p 8080 -h /www
`

// TestWorkloadsOnNode is issue 12's "How it is checked", on two boots of
// one node (2 CPUs, 1 GiB, an empty 8 GiB disk, an emulated ATI GPU):
//
//   - gpu: /status shows one GPU of vendor 1002; gpus: 1 reserves it,
//     gpus: 2 is refused (409) with the reason;
//   - auth: unsigned, badly signed, replayed (also after the reboot) and
//     not-allowed twins' requests get 401/403 and change nothing; over
//     capacity gets 409;
//   - pull: the registry cuts the connection once in the middle of the
//     image's big layer: the pull completes and the registry served less
//     than twice the image;
//   - inside: from its own log, the web workload sees only its processes,
//     its root is uid ≥ 1000000 on the node, image files are its own
//     (id-mapped), and it reaches neither the registry the node pulled from
//     (10.0.2.2) nor the node's :9100, while a loopback probe succeeds;
//   - oom: a workload allocating past its memory is killed and restarted;
//     the node, its workloads module and the web workload keep running;
//   - offline: after a power cut, with the registry and registrar stopped
//     and restrict=on, the web workload runs again, serves its page, its
//     volume's token is intact and its writable layer is fresh;
//   - undeploy: leaves no process, cgroup, namespace, veth, forwarding
//     rule, mount or root behind (the workloads fact's "found", read from
//     the kernel); --purge removes the volume; the unused image is
//     collected, the used one kept;
//   - poweroff: an ACPI power-off stops the remaining workload with
//     SIGTERM (it exits 0) before the node goes down.
func TestWorkloadsOnNode(t *testing.T) {
	bb, err := os.ReadFile(need.Tool(t, "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	r := image(t, "node")
	g := newRig(t)
	g.serveNodes()
	twin := g.farmer.Twin()
	keyFile := filepath.Join(t.TempDir(), "farmer.key")
	if err := farm.SaveKey(keyFile, g.key, false); err != nil {
		t.Fatal(err)
	}

	// Two images sharing a busybox layer: web (and its page), tool.
	reg := imagetest.Start(t)
	token := fmt.Sprintf("token-%d", time.Now().UnixNano())
	files := map[string]string{"bin/busybox": string(bb), "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group": "root:x:0:\n", "proc/": "", "sys/": "", "dev/": "", "tmp/": "", "data/": "", "root/": ""}
	for _, a := range []string{"sh", "httpd", "nc", "ps", "cat", "ls", "wc", "tr", "stat", "sync", "dd", "sleep", "echo", "touch"} {
		files["bin/"+a+" -> busybox"] = ""
	}
	base := imagetest.Layer(t, files)
	page := "hello from a gridnode workload\n"
	web := imagetest.Image(t, v1.Config{Env: []string{"PATH=/bin"}}, base, imagetest.Layer(t, map[string]string{"www/index.html": page}))
	tool := imagetest.Image(t, v1.Config{Env: []string{"PATH=/bin"}}, base, imagetest.Layer(t, map[string]string{"etc/tool": "tool\n"}))
	guestRef := func(pinned string) string {
		return strings.Replace(pinned, reg.Host, "10.0.2.2:"+strings.Split(reg.Host, ":")[1], 1)
	}
	_, webPinned := reg.Push(t, "web:1", web)
	_, toolPinned := reg.Push(t, "tool:1", tool)
	webRef, toolRef := guestRef(webPinned), guestRef(toolPinned)
	webSize := imageSize(t, web)

	dir := t.TempDir()
	files2 := writeDeployments(t, dir, map[string]string{
		"web.yaml": fmt.Sprintf(`name: web
workloads:
  - name: web
    image: %s
    command: [/bin/sh, -c, %q]
    env: {TOKEN: %s, PROBES: "127.0.0.1:8081 10.0.2.2:%s 10.0.2.15:9100 10.249.0.1:9100"}
    cpu: 0.3
    memory: 64Mi
    pids: 64
    disk: 64Mi
    ports: ["8080:8080/tcp"]
    volumes: [{name: data, path: /data, size: 16Mi}]
    restart: always
`, webRef, webScript, token, strings.Split(reg.Host, ":")[1]),
		"gpu.yaml":  toolDeployment("gpu", toolRef, "16Mi", 1, `trap 'echo gpu: stopping; exit 0' TERM; echo gpu: up; while :; do sleep 1; done`),
		"gpu2.yaml": toolDeployment("gpu2", toolRef, "16Mi", 2, `sleep 1000`),
		"hog.yaml":  toolDeployment("hog", toolRef, "32Mi", 0, `echo hog: start; dd if=/dev/zero of=/dev/null bs=64M count=1; echo hog: survived`),
		"big.yaml":  toolDeployment("big", toolRef, "100Gi", 0, `sleep 1000`),
	})

	disk := filepath.Join(dir, "disk.img")
	opts := func(restrict bool) qemu.Options {
		return qemu.Options{
			Boot: kernelBoot(r, g.cmdline(nodeUptime)...), CPUs: 2, Memory: 1024,
			Disks:    []qemu.Disk{{Path: disk, Size: 8 * gib, Serial: "cache0"}},
			NICs:     []qemu.NIC{{MAC: nodeMAC}},
			Forwards: []qemu.Forward{{Guest: 9100}, {Guest: 8080}},
			Restrict: restrict,
			// An emulated GPU on a PCIe port of its own (q35).
			ExtraArgs: []string{"-device", "pcie-root-port,id=rp1,chassis=1", "-device", "ati-vga,bus=rp1"},
		}
	}

	// ---- first boot
	started := time.Now()
	vm := boot(t, opts(false))
	expect(t, vm, `^gridnode: ready$`, bootTimeout)
	t.Logf("boot 1: ready after %s", time.Since(started).Round(time.Second))
	node := "http://" + vm.HostAddr(9100)
	owner, err := nodeclient.New(node, g.key, twin)
	if err != nil {
		t.Fatal(err)
	}
	st := nodeStatus(t, node)
	var gpus []fact.GPU
	for _, gp := range st.Hardware.GPUs {
		if gp.VendorID == "1002" {
			gpus = append(gpus, gp)
		}
	}
	if len(st.Hardware.GPUs) != 1 || len(gpus) != 1 {
		t.Errorf("/status shows GPUs %+v, want one of vendor 1002", st.Hardware.GPUs)
	}
	if st.Workloads.Capacity.Total.GPUs != 1 {
		t.Errorf("workloads capacity %+v, want 1 GPU in total", st.Workloads.Capacity.Total)
	}

	t.Run("auth", func(t *testing.T) {
		body := canonical(t, files2["gpu.yaml"])
		other, _, err := farm.NewKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		oc, err := client.New(g.farmer.BaseURL(), other, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		acct, err := oc.CreateAccount(context.Background())
		if err != nil {
			t.Fatalf("another twin's account: %v", err)
		}
		for _, c := range []struct {
			what string
			req  signedRequest
			want int
		}{
			{"unsigned", signedRequest{method: "POST", path: deployment.Path, body: body}, http.StatusUnauthorized},
			{"badly signed (another key, the farmer's twin)", sign(other, twin, "POST", deployment.Path, body), http.StatusUnauthorized},
			{"signed over another body", sign(g.key, twin, "POST", deployment.Path, canonical(t, files2["hog.yaml"])).withBody(body), http.StatusUnauthorized},
			{"a twin the farmer did not allow", sign(other, acct.TwinID, "POST", deployment.Path, body), http.StatusForbidden},
			{"over capacity", sign(g.key, twin, "POST", deployment.Path, canonical(t, files2["big.yaml"])), http.StatusConflict},
			{"two GPUs on a node with one", sign(g.key, twin, "POST", deployment.Path, canonical(t, files2["gpu2.yaml"])), http.StatusConflict},
		} {
			code, answer := c.req.send(t, node)
			t.Logf("%s: %d %s", c.what, code, strings.TrimSpace(answer))
			if code != c.want {
				t.Errorf("%s: %d %s, want %d", c.what, code, answer, c.want)
			}
			if c.want == http.StatusConflict && !strings.Contains(answer, "free") && !strings.Contains(answer, "gpus") {
				t.Errorf("%s: the refusal %q does not give the numbers", c.what, answer)
			}
		}
		if l, err := owner.List(context.Background()); err != nil || len(l) != 0 {
			t.Errorf("after refused requests the node lists %+v (%v), want nothing", l, err)
		}
	})

	var webStatus deployment.Status
	t.Run("deploy", func(t *testing.T) {
		// The registry cuts the big layer once, half way.
		bl, _ := base.Digest()
		bsize, _ := base.Size()
		reg.CutOnce(bl.String(), bsize/2)
		before, seen := reg.Served.Load(), len(reg.Requests())
		out, code := runCLI(t, "deploy", files2["web.yaml"], "--node", node, "--key", keyFile, "--twin", strconv.FormatUint(twin, 10), "--timeout", "5m")
		if code != 0 {
			t.Fatalf("gridnode deploy exited %d:\n%s", code, out)
		}
		served := reg.Served.Load() - before
		gets := 0
		for _, q := range reg.Requests()[seen:] {
			if strings.HasPrefix(q, "GET ") && strings.Contains(q, "/blobs/"+bl.String()) {
				gets++
			}
		}
		t.Logf("pull: %d bytes served for an image of %d (the layer of %d bytes fetched %d times)", served, webSize, bsize, gets)
		if gets < 2 {
			t.Errorf("the layer was fetched %d times: the cut did not happen", gets)
		}
		if served >= 2*webSize {
			t.Errorf("the registry served %d bytes for an image of %d: a resumed pull stays under twice", served, webSize)
		}
		got := fetchPage(t, "http://"+vm.HostAddr(8080)+"/", time.Minute)
		if got != page {
			t.Errorf("the published port served %q, want %q", got, page)
		}
		webStatus, _ = owner.Status(context.Background(), "web")
	})
	if t.Failed() {
		return
	}

	// The GPU deployment (its image shares the busybox layer the web
	// pull brought), then its replay.
	var gpuReq signedRequest
	t.Run("gpu", func(t *testing.T) {
		gpuReq = sign(g.key, twin, "POST", deployment.Path, canonical(t, files2["gpu.yaml"]))
		if code, answer := gpuReq.send(t, node); code != http.StatusAccepted {
			t.Fatalf("deploying gpu: %d %s", code, answer)
		}
		if code, answer := gpuReq.send(t, node); code != http.StatusUnauthorized && code != http.StatusForbidden {
			t.Errorf("a replayed deployment: %d %s, want 401 or 403", code, answer)
		}
		if _, err := owner.Wait(context.Background(), "gpu", 1, func(deployment.Status) {}); err != nil {
			t.Errorf("gpu: %v", err)
		}
		if s, err := owner.Status(context.Background(), "gpu"); err != nil || s.Generation != 1 {
			t.Errorf("gpu after its replay: generation %d (%v), want 1", s.Generation, err)
		}
		if u := nodeStatus(t, node).Workloads.Capacity.Used; u.GPUs != 1 {
			t.Errorf("capacity used %+v, want the one GPU reserved for gpu", u)
		}
	})

	var uidBase int
	t.Run("inside", func(t *testing.T) {
		log := waitLog(t, keyFile, node, twin, "web/web", "check: volume ", time.Minute)
		uidBase = checkInside(t, log, token, strings.Split(reg.Host, ":")[1])
	})

	t.Run("oom", func(t *testing.T) {
		ctx := context.Background()
		if _, err := owner.Deploy(ctx, loadDeployment(t, files2["hog.yaml"])); err != nil {
			t.Fatal(err)
		}
		var hog deployment.WorkloadStatus
		testutil.Eventually(t, 3*time.Minute, func() bool {
			s, err := owner.Status(ctx, "hog")
			if err == nil && len(s.Workloads) == 1 {
				hog = s.Workloads[0]
			}
			return hog.Restarts >= 1 && strings.Contains(hog.LastExit, "out of memory")
		}, "hog was not killed for its memory and restarted: %+v", &hog)
		t.Logf("hog: %d restarts, last exit %q", hog.Restarts, hog.LastExit)
		if got := fetchPage(t, "http://"+vm.HostAddr(8080)+"/", time.Minute); got != page {
			t.Errorf("after the OOM kill the web workload served %q", got)
		}
		for _, name := range []string{"web", "gpu"} {
			if s, err := owner.Status(ctx, name); err != nil || s.Workloads[0].State != fact.WorkloadRunning || s.Workloads[0].Restarts != 0 {
				t.Errorf("%s after the OOM kill: %+v %v, want running, never restarted", name, s, err)
			}
		}
		if n := strings.Count(vm.Console(), "deployments API listening"); n != 1 {
			t.Errorf("the workloads module started %d times, want once", n)
		}
		if n := len(regexp.MustCompile(`(?m)^gridnode: init `).FindAllString(vm.Console(), -1)); n != 1 {
			t.Errorf("PID 1 started %d times, want once", n)
		}
	})
	if t.Failed() {
		return
	}

	// ---- power cut; the registry and the registrar go away; no uplink
	vm.Kill()
	reg.Close()
	g.stopNodes()
	started = time.Now()
	vm = boot(t, opts(true))
	node = "http://" + vm.HostAddr(9100)
	owner, _ = nodeclient.New(node, g.key, twin)
	t.Run("offline", func(t *testing.T) {
		got := fetchPage(t, "http://"+vm.HostAddr(8080)+"/", bootTimeout)
		t.Logf("boot 2 (offline): the page is served %s after QEMU started", time.Since(started).Round(time.Second))
		if got != page {
			t.Errorf("after the power cut the published port served %q", got)
		}
		log := waitLog(t, keyFile, node, twin, "web/web", "check: volume ", time.Minute)
		if n := countLines(log, "check: volume "+token); n != 2 {
			t.Errorf("the volume's token shows %d times in the log over two boots, want 2:\n%s", n, log)
		}
		if n := countLines(log, "check: writable layer kept"); n != 0 {
			t.Errorf("the writable layer kept a file across starts:\n%s", log)
		}
		if code, answer := gpuReq.send(t, node); code != http.StatusUnauthorized && code != http.StatusForbidden {
			t.Errorf("the gpu deployment replayed after the reboot: %d %s, want 401 or 403", code, answer)
		}
	})

	t.Run("undeploy", func(t *testing.T) {
		if out, code := runCLI(t, "undeploy", "hog", "--node", node, "--key", keyFile, "--twin", strconv.FormatUint(twin, 10)); code != 0 {
			t.Fatalf("undeploy hog: %d\n%s", code, out)
		}
		if out, code := runCLI(t, "undeploy", "web", "--purge", "--node", node, "--key", keyFile, "--twin", strconv.FormatUint(twin, 10)); code != 0 {
			t.Fatalf("undeploy web: %d\n%s", code, out)
		}
		key := fmt.Sprintf("t%d-", twin)
		var f *fact.WorkloadsFound
		left := func() []string {
			st := nodeStatus(t, node)
			f = st.Workloads.Found
			if f == nil {
				return []string{"no found in the workloads fact"}
			}
			var l []string
			for _, p := range f.Processes {
				if uid, _ := strconv.Atoi(strings.Fields(p)[1]); uid >= uidBase && uid < uidBase+65536 {
					l = append(l, "process "+p)
				}
			}
			for _, d := range []struct {
				what string
				l    []string
			}{{"cgroup", f.Cgroups}, {"namespace", f.Namespaces}, {"mount", f.Mounts}, {"root", f.RootFS}, {"volume", f.Volumes}} {
				for _, e := range d.l {
					if strings.Contains(e, key+"web") || strings.Contains(e, key+"hog") {
						l = append(l, d.what+" "+e)
					}
				}
			}
			for _, rule := range f.Rules {
				if webStatus.Address != "" && strings.Contains(rule, webStatus.Address+":") {
					l = append(l, "rule "+rule)
				}
			}
			if len(f.Links) != 1 {
				l = append(l, fmt.Sprintf("veths %v, want gpu's alone", f.Links))
			}
			for _, i := range f.Images {
				if i == webRef {
					l = append(l, "image "+i)
				}
			}
			return l
		}
		var l []string
		testutil.Eventually(t, time.Minute, func() bool { l = left(); return len(l) == 0 }, "left behind after undeploy: %v", &l)
		t.Logf("found after undeploy: %+v", f)
		// What stays is gpu's: the check above is not blind.
		if !strings.Contains(strings.Join(f.Cgroups, " "), key+"gpu") || len(f.Rules) != 0 || len(f.Images) != 1 || f.Images[0] != toolRef {
			t.Errorf("gpu's cgroup, no forwarding rule and the tool image should remain: %+v", f)
		}
	})

	t.Run("poweroff", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := vm.Powerdown(ctx); err != nil {
			t.Fatal(err)
		}
		expect(t, vm, `workload stopped.*`+regexp.QuoteMeta(fmt.Sprintf("t%d-gpu.gpu.g1", twin))+`.*exit 0`, 2*time.Minute)
		select {
		case <-vm.Done():
		case <-ctx.Done():
			t.Error("the node did not power off")
		}
	})
}

// checkInside reads the web workload's log and returns its root's uid on
// the node.
func checkInside(t *testing.T, log, token, regPort string) int {
	t.Helper()
	t.Logf("web workload's log:\n%s", log)
	line := func(prefix string) string {
		for _, l := range strings.Split(log, "\n") {
			if v, ok := strings.CutPrefix(l, prefix); ok {
				return strings.TrimSpace(v)
			}
		}
		t.Errorf("the log has no %q", prefix)
		return ""
	}
	if p := line("check: pid1 "); !strings.HasPrefix(p, "/bin/sh -c") {
		t.Errorf("pid 1 in the container is %q, want the workload's shell", p)
	}
	// sh, the command substitution's subshell, ls and wc, and the
	// loopback httpd on a later start: the node runs over a hundred.
	if n, _ := strconv.Atoi(line("check: procs ")); n == 0 || n > 8 {
		t.Errorf("the container sees %d processes, want its own few", n)
	}
	if strings.Contains(log, "/init") || strings.Contains(log, "gridnode-container") {
		t.Error("the container sees the node's processes")
	}
	m := strings.Fields(line("check: uid_map "))
	base := 0
	if len(m) == 3 {
		base, _ = strconv.Atoi(m[1])
	}
	if len(m) != 3 || m[0] != "0" || base < 1000000 || m[2] != "65536" {
		t.Errorf("uid_map %v: want container root mapped to an unprivileged uid ≥ 1000000 of a 65536 range", m)
	}
	if o := line("check: busybox owner "); o != "0" {
		t.Errorf("the image's files are owned by %q in the container, want 0 (id-mapped)", o)
	}
	line("check: image file writable")
	line("check: reached 127.0.0.1:8081") // the probe works
	for _, a := range []string{"10.0.2.2:" + regPort, "10.0.2.15:9100", "10.249.0.1:9100"} {
		line("check: unreachable " + a)
	}
	if v := line("check: volume "); v != token {
		t.Errorf("volume token %q, want %q", v, token)
	}
	return base
}

// countLines counts the lines of log that are exactly line (the log also
// holds the script, echoed by ps).
func countLines(log, line string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if strings.TrimSpace(l) == line {
			n++
		}
	}
	return n
}

// toolDeployment is a deployment of one workload of the tool image running
// script.
func toolDeployment(name, ref, memory string, gpus int, script string) string {
	return fmt.Sprintf(`name: %s
workloads:
  - name: %s
    image: %s
    command: [/bin/sh, -c, %q]
    cpu: 0.2
    memory: %s
    disk: 32Mi
    gpus: %d
    restart: always
`, name, name, ref, script, memory, gpus)
}

func writeDeployments(t *testing.T, dir string, files map[string]string) map[string]string {
	t.Helper()
	paths := map[string]string{}
	for n, text := range files {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := deployment.Load(p); err != nil {
			t.Fatal(err)
		}
		paths[n] = p
	}
	return paths
}

func loadDeployment(t *testing.T, path string) deployment.Deployment {
	t.Helper()
	d, err := deployment.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func canonical(t *testing.T, path string) []byte {
	t.Helper()
	b, err := loadDeployment(t, path).Canonical()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// imageSize is the bytes of an image's blobs: manifest, config, layers.
func imageSize(t *testing.T, img v1.Image) int64 {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := img.RawManifest()
	n := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

// signedRequest is a request to the node's API with its signature headers,
// kept to be sent again (a replay).
type signedRequest struct {
	method, path string
	body         []byte
	auth, strict string
}

func sign(key ed25519.PrivateKey, twin uint64, method, path string, body []byte) signedRequest {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	a, s := api.StrictAuthHeaders(key, twin, time.Now(), nonce, method, path, body)
	return signedRequest{method: method, path: path, body: body, auth: a, strict: s}
}

func (r signedRequest) withBody(b []byte) signedRequest { r.body = b; return r }

func (r signedRequest) send(t *testing.T, node string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(r.method, node+r.path, bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if r.auth != "" {
		req.Header.Set(api.HeaderAuth, r.auth)
		req.Header.Set(api.HeaderAuthStrict, r.strict)
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// runCLI runs the gridnode command line in this process.
func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	code := cli.Run(args, strings.NewReader(""), &out, &out)
	t.Logf("gridnode %s: exit %d\n%s", strings.Join(args, " "), code, out.String())
	return out.String(), code
}

// waitLog reads a workload's log with `gridnode logs` until it holds want.
func waitLog(t *testing.T, keyFile, node string, twin uint64, which, want string, timeout time.Duration) string {
	t.Helper()
	var log string
	testutil.Eventually(t, timeout, func() bool {
		var out bytes.Buffer
		cli.Run([]string{"logs", which, "--node", node, "--key", keyFile, "--twin", strconv.FormatUint(twin, 10)}, strings.NewReader(""), &out, &out)
		log = out.String()
		return strings.Contains(log, want)
	}, "the log of %s never showed %q: %v", which, want, &log)
	return log
}

// fetchPage GETs url until it answers 200, within timeout.
func fetchPage(t *testing.T, url string, timeout time.Duration) string {
	t.Helper()
	var body, last string
	c := &http.Client{Timeout: 10 * time.Second}
	testutil.Eventually(t, timeout, func() bool {
		resp, err := c.Get(url)
		if err != nil {
			last = err.Error()
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		last = resp.Status
		body = string(b)
		return resp.StatusCode == http.StatusOK
	}, "GET %s: %v", url, &last)
	return body
}

// statusDoc is what tests read of a node's /status.
type statusDoc struct {
	Modules   map[string]fact.Module `json:"modules"`
	Hardware  fact.Hardware          `json:"hardware"`
	Identity  fact.Identity          `json:"identity"`
	Registrar fact.Registrar         `json:"registrar"`
	Workloads fact.Workloads         `json:"workloads"`
}

func nodeStatus(t *testing.T, node string) statusDoc {
	t.Helper()
	var st statusDoc
	getJSON(t, node+"/status", &st)
	return st
}
