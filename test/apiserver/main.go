// Command nim-test-apiserver runs a real kube-apiserver (k8s.io/kubernetes, linked as a library)
// backed by an embedded etcd, both on 127.0.0.1, for integration tests.
//
// Usage:
//
//	nim-test-apiserver [--port N] [--kubeconfig PATH] [--v N] [-- extra kube-apiserver flags]
//
// When the server is ready (/readyz is 200 for the admin user and namespace "default" exists) it
// prints exactly one line to stdout:
//
//	READY {"kubeconfig":"/tmp/.../kubeconfig","url":"https://127.0.0.1:PORT"}
//
// Everything else goes to stderr. SIGTERM or SIGINT stops the apiserver and etcd, removes the
// temp dir and exits 0; a second signal exits 1 at once.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	goflag "flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"

	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"
)

const (
	readyTimeout    = 120 * time.Second
	shutdownTimeout = 30 * time.Second
	certValidity    = 7 * 24 * time.Hour
)

type cliOptions struct {
	port       int
	kubeconfig string
	verbosity  int
	extra      []string // passed through to kube-apiserver's flag set
}

func main() {
	os.Exit(run())
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "nim-test-apiserver: "+format+"\n", args...)
}

func parseArgs(args []string) (cliOptions, error) {
	var o cliOptions
	own := args
	for i, a := range args {
		if a == "--" {
			own, o.extra = args[:i], args[i+1:]
			break
		}
	}
	fs := goflag.NewFlagSet("nim-test-apiserver", goflag.ContinueOnError)
	fs.IntVar(&o.port, "port", 0, "secure port on 127.0.0.1 (0 = pick a free port)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "where to write the admin kubeconfig (default: in the temp dir)")
	fs.IntVar(&o.verbosity, "v", 0, "klog verbosity; info logs are only shown when > 0")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: nim-test-apiserver [--port N] [--kubeconfig PATH] [--v N] [-- kube-apiserver flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(own); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q (put kube-apiserver flags after --)", fs.Args())
	}
	return o, nil
}

func run() int {
	cli, err := parseArgs(os.Args[1:])
	if err != nil {
		if errors.Is(err, goflag.ErrHelp) {
			return 0
		}
		logf("%v", err)
		return 2
	}
	configureKlog(cli.verbosity)

	// Our own signal handling: the kube-apiserver cobra command would install
	// genericapiserver.SetupSignalContext, which panics when called twice and exits on the
	// second signal without cleanup. We drive the server programmatically instead.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigCh := make(chan os.Signal, 2)
	signal.Notify(sigCh, syscall.SIGTERM, syscall.SIGINT)

	dir, err := os.MkdirTemp("", "nim-test-apiserver-")
	if err != nil {
		logf("create temp dir: %v", err)
		return 1
	}
	cleanupDir := func() {
		if err := os.RemoveAll(dir); err != nil {
			logf("remove %s: %v", dir, err)
		}
	}
	go func() {
		sig := <-sigCh
		logf("received %v, shutting down", sig)
		cancel()
		select {
		case sig = <-sigCh:
			logf("received %v again, exiting now", sig)
		case <-time.After(shutdownTimeout):
			logf("shutdown took longer than %v, exiting", shutdownTimeout)
		}
		cleanupDir()
		os.Exit(1)
	}()

	code := serve(ctx, cli, dir)
	cleanupDir()
	return code
}

// configureKlog keeps klog quiet by default: only errors go to stderr (startup prints dozens of
// harmless "Skipping API" warnings); with -v > 0 everything goes to stderr. klog would otherwise create log files in $TMPDIR when logtostderr=false, so its
// output is redirected explicitly.
func configureKlog(v int) {
	fs := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(fs)
	set := func(k, val string) { _ = fs.Set(k, val) }
	set("v", strconv.Itoa(v))
	if v > 0 {
		set("logtostderr", "true")
		return
	}
	set("logtostderr", "false")
	set("alsologtostderr", "false")
	set("stderrthreshold", "ERROR")
	klog.SetOutput(io.Discard)
}

func serve(ctx context.Context, cli cliOptions, dir string) int {
	pki, err := writePKI(filepath.Join(dir, "pki"))
	if err != nil {
		logf("generate certificates: %v", err)
		return 1
	}

	etcdLog := zap.NewAtomicLevelAt(zapcore.ErrorLevel)
	etcd, etcdURL, err := startEtcd(filepath.Join(dir, "etcd"), etcdLog)
	if err != nil {
		logf("start etcd: %v", err)
		return 1
	}
	defer func() {
		// etcd logs every closed listener at error level during a normal Close.
		etcdLog.SetLevel(zapcore.FatalLevel)
		etcd.Close()
		<-etcd.Server.StopNotify()
	}()

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cli.port)))
	if err != nil {
		logf("listen on 127.0.0.1:%d: %v", cli.port, err)
		return 1
	}
	port := ln.Addr().(*net.TCPAddr).Port
	serverURL := "https://127.0.0.1:" + strconv.Itoa(port)

	kubeconfig := cli.kubeconfig
	if kubeconfig == "" {
		kubeconfig = filepath.Join(dir, "kubeconfig")
	}
	if err := writeKubeconfig(kubeconfig, serverURL, pki); err != nil {
		ln.Close()
		logf("write kubeconfig: %v", err)
		return 1
	}

	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		// The advertise address must be set on a loopback-only host (otherwise the apiserver looks
		// for a default-route interface and fails); a loopback advertise address is only accepted
		// with the no-op endpoint reconciler.
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--cert-dir=" + filepath.Join(dir, "pki"),
		"--tls-cert-file=" + pki.servingCert,
		"--tls-private-key-file=" + pki.servingKey,
		"--client-ca-file=" + pki.caCert,
		"--service-cluster-ip-range=10.0.0.0/16",
		"--authorization-mode=Node,RBAC",
		"--allow-privileged=true",
		// No controller-manager runs, so the default ServiceAccount is never created.
		"--disable-admission-plugins=ServiceAccount",
		"--service-account-issuer=" + serverURL,
		"--service-account-key-file=" + pki.saPub,
		"--service-account-signing-key-file=" + pki.saKey,
	}
	args = append(args, cli.extra...)

	server, err := buildServer(ctx, args, ln)
	if err != nil {
		ln.Close()
		logf("configure kube-apiserver: %v", err)
		return 1
	}

	// Closed after the one send, so every later receive returns at once.
	runErr := make(chan error, 1)
	go func() {
		runErr <- server.Run(ctx)
		close(runErr)
	}()

	start := time.Now()
	if err := waitReady(ctx, serverURL, pki, runErr); err != nil {
		if ctx.Err() != nil {
			return awaitStop(runErr, 0)
		}
		logf("kube-apiserver did not become ready: %v", err)
		return awaitStop(runErr, 1)
	}
	line, _ := json.Marshal(map[string]string{"kubeconfig": kubeconfig, "url": serverURL})
	fmt.Fprintf(os.Stdout, "READY %s\n", line)
	logf("ready after %v (etcd %s)", time.Since(start).Round(time.Millisecond), etcdURL)

	select {
	case err := <-runErr:
		if ctx.Err() == nil {
			logf("kube-apiserver stopped unexpectedly: %v", err)
			return 1
		}
		if err != nil {
			logf("kube-apiserver shutdown: %v", err)
		}
		return 0
	case <-ctx.Done():
		return awaitStop(runErr, 0)
	}
}

// awaitStop waits for the apiserver's Run to return after ctx was cancelled (or failed).
func awaitStop(runErr <-chan error, code int) int {
	if err := <-runErr; err != nil && code == 0 {
		logf("kube-apiserver shutdown: %v", err)
	}
	return code
}

type runner interface{ Run(context.Context) error }

// buildServer follows cmd/kube-apiserver/app.NewAPIServerCommand and
// cmd/kube-apiserver/app/testing.StartTestServer, minus the signal handler.
func buildServer(ctx context.Context, args []string, ln net.Listener) (runner, error) {
	s := options.NewServerRunOptions()
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, f := range s.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	s.SecureServing.Listener = ln
	s.SecureServing.BindPort = ln.Addr().(*net.TCPAddr).Port

	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, err
	}
	// kube-apiserver loopback clients should not log self-issued warnings.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})

	completed, err := s.Complete(ctx)
	if err != nil {
		return nil, err
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return nil, utilerrors.NewAggregate(errs)
	}
	config, err := app.NewConfig(completed)
	if err != nil {
		return nil, err
	}
	cc, err := config.Complete()
	if err != nil {
		return nil, err
	}
	chain, err := app.CreateServerChain(cc)
	if err != nil {
		return nil, err
	}
	prepared, err := chain.PrepareRun()
	if err != nil {
		return nil, err
	}
	return prepared, nil
}

// --- etcd ---

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startEtcd(dir string, level zap.AtomicLevel) (*embed.Etcd, string, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // free ports can be taken between probe and bind
		e, u, err := startEtcdOnce(dir, level)
		if err == nil {
			return e, u, nil
		}
		lastErr = err
		_ = os.RemoveAll(dir)
	}
	return nil, "", lastErr
}

func startEtcdOnce(dir string, level zap.AtomicLevel) (*embed.Etcd, string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	clientPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	peerPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	clientURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(clientPort)}
	peerURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(peerPort)}

	cfg := embed.NewConfig()
	cfg.Name = "nim-test"
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.UnsafeNoFsync = true
	cfg.Logger = "zap"
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(zapcore.NewCore(
		zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.Lock(os.Stderr), level)))

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, clientURL.String(), nil
	case err := <-e.Err():
		e.Close()
		return nil, "", err
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, "", errors.New("etcd did not become ready within 60s")
	}
}

// --- readiness ---

func waitReady(ctx context.Context, serverURL string, pki *pkiFiles, runErr <-chan error) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pki.caPEM)
	clientCert, err := tls.X509KeyPair(pki.adminCertPEM, pki.adminKeyPEM)
	if err != nil {
		return err
	}
	hc := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			Proxy:           nil, // never send loopback traffic to a proxy
			TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{clientCert}},
		},
	}
	defer hc.CloseIdleConnections()
	status := func(path string) int {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, serverURL+path, nil)
		if err != nil {
			return 0
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}

	deadline := time.After(readyTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := 0
	for {
		select {
		case err := <-runErr:
			if err == nil {
				err = errors.New("exited")
			}
			return fmt.Errorf("kube-apiserver stopped: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("timed out after %v (last /readyz status %d)", readyTimeout, last)
		case <-tick.C:
		}
		if last = status("/readyz"); last != http.StatusOK {
			continue
		}
		if status("/api/v1/namespaces/default") == http.StatusOK {
			return nil
		}
	}
}

// --- certificates and kubeconfig ---

type pkiFiles struct {
	caCert, servingCert, servingKey, saKey, saPub string
	caPEM, adminCertPEM, adminKeyPEM              []byte
}

func writePKI(dir string) (*pkiFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "nim-test-apiserver-ca", Organization: []string{"nim-test"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := sign(caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}

	leaf := func(tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(certValidity)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.BasicConstraintsValid = true
		der, err := sign(tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return nil, nil, err
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		return pemBlock("CERTIFICATE", der), pemBlock("EC PRIVATE KEY", keyDER), nil
	}

	servingCert, servingKey, err := leaf(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, err
	}
	adminCert, adminKey, err := leaf(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, err
	}

	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saKeyDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return nil, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}

	p := &pkiFiles{
		caCert:       filepath.Join(dir, "ca.crt"),
		servingCert:  filepath.Join(dir, "apiserver.crt"),
		servingKey:   filepath.Join(dir, "apiserver.key"),
		saKey:        filepath.Join(dir, "sa.key"),
		saPub:        filepath.Join(dir, "sa.pub"),
		caPEM:        pemBlock("CERTIFICATE", caDER),
		adminCertPEM: adminCert,
		adminKeyPEM:  adminKey,
	}
	files := map[string][]byte{
		p.caCert:                        p.caPEM,
		p.servingCert:                   servingCert,
		p.servingKey:                    servingKey,
		p.saKey:                         pemBlock("EC PRIVATE KEY", saKeyDER),
		p.saPub:                         pemBlock("PUBLIC KEY", saPubDER),
		filepath.Join(dir, "admin.crt"): adminCert,
		filepath.Join(dir, "admin.key"): adminKey,
	}
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, key *ecdsa.PrivateKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial.Add(serial, big.NewInt(1))
	return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func writeKubeconfig(path, serverURL string, p *pkiFiles) error {
	const name = "nim-test"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: serverURL, CertificateAuthorityData: p.caPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: p.adminCertPEM, ClientKeyData: p.adminKeyPEM}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = name
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return clientcmd.WriteToFile(*cfg, path)
}
