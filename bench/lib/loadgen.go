// loadgen: a closed loop of -c keep-alive HTTPS/1.1 connections POSTing one body for -d seconds, like
// wrk (bench/lib/wrk.ts), but able to present a client certificate: the webhook lends pull secrets
// only to a caller with the kube-apiserver's certificate, and wrk cannot present one. Built by
// bench/lib/loadgen.ts with `go build` (standard library only). Prints one JSON line in the shape of
// post.lua's: requests, durationUs, errors, latency percentiles in microseconds.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"
)

type errorCounts struct {
	Connect int `json:"connect"`
	Read    int `json:"read"`
	Write   int `json:"write"`
	Status  int `json:"status"`
	Timeout int `json:"timeout"`
}

type summary struct {
	Requests   int         `json:"requests"`
	DurationUs int64       `json:"durationUs"`
	Errors     errorCounts `json:"errors"`
	P50        int64       `json:"p50"`
	P90        int64       `json:"p90"`
	P99        int64       `json:"p99"`
	Max        int64       `json:"max"`
	Mean       float64     `json:"mean"`
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
	os.Exit(2)
}

func tlsConfig(caFile, certFile, keyFile string) *tls.Config {
	config := &tls.Config{}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			fail("%v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			fail("no certificate in %s", caFile)
		}
		config.RootCAs = pool
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			fail("%v", err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return config
}

func percentile(sorted []time.Duration, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	index := int(float64(len(sorted)-1) * p / 100)
	return sorted[index].Microseconds()
}

func main() {
	url := flag.String("url", "", "where to POST")
	bodyFile := flag.String("body", "", "the request body (JSON)")
	connections := flag.Int("c", 1, "connections, each one request at a time")
	seconds := flag.Float64("d", 5, "duration in seconds")
	caFile := flag.String("ca", "", "CA of the server (PEM)")
	certFile := flag.String("cert", "", "client certificate (PEM)")
	keyFile := flag.String("key", "", "client key (PEM)")
	flag.Parse()
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		fail("%v", err)
	}
	transport := &http.Transport{
		TLSClientConfig:     tlsConfig(*caFile, *certFile, *keyFile),
		MaxIdleConnsPerHost: *connections,
		MaxConnsPerHost:     *connections,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1, as wrk
	}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}

	var mutex sync.Mutex
	var latencies []time.Duration
	var errors errorCounts
	began := time.Now()
	deadline := began.Add(time.Duration(*seconds * float64(time.Second)))
	var group sync.WaitGroup
	for range *connections {
		group.Add(1)
		go func() {
			defer group.Done()
			var mine []time.Duration
			var mineErrors errorCounts
			for time.Now().Before(deadline) {
				started := time.Now()
				request, _ := http.NewRequest(http.MethodPost, *url, bytes.NewReader(body))
				request.Header.Set("Content-Type", "application/json")
				response, err := client.Do(request)
				if err != nil {
					mineErrors.Connect++
					continue
				}
				_, err = io.Copy(io.Discard, response.Body)
				response.Body.Close()
				if err != nil {
					mineErrors.Read++
					continue
				}
				if response.StatusCode < 200 || response.StatusCode > 299 {
					mineErrors.Status++
				}
				mine = append(mine, time.Since(started))
			}
			mutex.Lock()
			latencies = append(latencies, mine...)
			errors.Connect += mineErrors.Connect
			errors.Read += mineErrors.Read
			errors.Status += mineErrors.Status
			mutex.Unlock()
		}()
	}
	group.Wait()
	elapsed := time.Since(began)
	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	var total time.Duration
	for _, latency := range latencies {
		total += latency
	}
	result := summary{Requests: len(latencies), DurationUs: elapsed.Microseconds(), Errors: errors}
	if len(latencies) > 0 {
		result.P50 = percentile(latencies, 50)
		result.P90 = percentile(latencies, 90)
		result.P99 = percentile(latencies, 99)
		result.Max = latencies[len(latencies)-1].Microseconds()
		result.Mean = float64(total.Microseconds()) / float64(len(latencies))
	}
	out, _ := json.Marshal(result)
	fmt.Println(string(out))
}
