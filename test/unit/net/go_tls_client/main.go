// A TLS 1.3 client on Go's crypto/tls (the TLS stack of KubeEdge's edgecore), for the hub's
// interop test: it connects with a client certificate, sends -bytes bytes while reading them
// back from an echo server, checks them, and prints the negotiated cipher suite.
// Standard library only; built by the test with GO111MODULE=off.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"os"
)

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%23 + i/65536%3)
	}
	return b
}

func run() error {
	addr := flag.String("addr", "", "host:port of the echo server")
	caFile := flag.String("ca", "", "CA certificate (PEM)")
	certFile := flag.String("cert", "", "client certificate (PEM)")
	keyFile := flag.String("key", "", "client key (PEM)")
	size := flag.Int("bytes", 4<<20, "bytes to send and read back")
	flag.Parse()

	caPEM, err := os.ReadFile(*caFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("no CA certificate in %s", *caFile)
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return err
	}
	conn, err := tls.Dial("tcp", *addr, &tls.Config{
		RootCAs:      roots,
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
		ServerName:   "127.0.0.1",
	})
	if err != nil {
		return err
	}
	defer conn.Close()

	sent := pattern(*size)
	written := make(chan error, 1)
	go func() {
		// Uneven writes: records of every size, not only full ones.
		for at, step := 0, 1; at < len(sent); step = step*7%50000 + 1 {
			end := at + step
			if end > len(sent) {
				end = len(sent)
			}
			if _, err := conn.Write(sent[at:end]); err != nil {
				written <- err
				return
			}
			at = end
		}
		written <- nil
	}()
	got := make([]byte, len(sent))
	if _, err := io.ReadFull(conn, got); err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if err := <-written; err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	if !bytes.Equal(got, sent) {
		return fmt.Errorf("the echo differs from what was sent")
	}
	// Our close_notify, then the server's ends the stream cleanly.
	if err := conn.CloseWrite(); err != nil {
		return fmt.Errorf("close_notify: %w", err)
	}
	if n, err := conn.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		return fmt.Errorf("after the echo: %d bytes, %v (want EOF)", n, err)
	}
	state := conn.ConnectionState()
	fmt.Printf("suite=%s bytes=%d ok\n", tls.CipherSuiteName(state.CipherSuite), len(got))
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "go_tls_client:", err)
		os.Exit(1)
	}
}
