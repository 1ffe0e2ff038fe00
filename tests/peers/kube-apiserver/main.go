// kube-apiserver as Kubernetes builds it (cmd/kube-apiserver/apiserver.go: the same command,
// the same blank imports), plus an etcd embedded in the same process for the tests, so the
// harness starts and kills one process and needs no second binary.
//
// With CLUSTERROLE_AGGREGATION_TOKEN (and _SERVER, _CA_FILE) set, it also runs Kubernetes'
// ClusterRole aggregation controller against itself: that controller lives in
// kube-controller-manager, which the tests do not run, and without it the aggregated roles
// (`view`, `edit`, `admin`, which examples/cluster-role-binding.yaml binds) have no rules.
//
// With EMBEDDED_ETCD_DIR, EMBEDDED_ETCD_CLIENT_URL and EMBEDDED_ETCD_PEER_URL set, an etcd
// member is started on those loopback URLs (data in that directory) before the API server;
// pass the client URL as --etcd-servers. Without them it is kube-apiserver, unchanged.
package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"time"
	_ "time/tzdata" // for timeZone support in CronJob, as upstream

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as upstream
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as upstream
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/pkg/controller/clusterroleaggregation"
)

func main() {
	if dir := os.Getenv("EMBEDDED_ETCD_DIR"); dir != "" {
		if err := startEtcd(dir, os.Getenv("EMBEDDED_ETCD_CLIENT_URL"), os.Getenv("EMBEDDED_ETCD_PEER_URL")); err != nil {
			fmt.Fprintf(os.Stderr, "embedded etcd: %v\n", err)
			os.Exit(1)
		}
	}
	if token := os.Getenv("CLUSTERROLE_AGGREGATION_TOKEN"); token != "" {
		startAggregation(os.Getenv("CLUSTERROLE_AGGREGATION_SERVER"), token, os.Getenv("CLUSTERROLE_AGGREGATION_CA_FILE"))
	}
	command := app.NewAPIServerCommand()
	os.Exit(cli.Run(command))
}

// startEtcd runs a one-member etcd and returns once it serves. It lives as long as the
// process: the API server is its only client.
func startEtcd(dir, clientURL, peerURL string) error {
	client, err := url.Parse(clientURL)
	if err != nil {
		return fmt.Errorf("EMBEDDED_ETCD_CLIENT_URL: %w", err)
	}
	peer, err := url.Parse(peerURL)
	if err != nil {
		return fmt.Errorf("EMBEDDED_ETCD_PEER_URL: %w", err)
	}
	cfg := embed.NewConfig()
	cfg.Name = "test"
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{*client}
	cfg.AdvertiseClientUrls = []url.URL{*client}
	cfg.ListenPeerUrls = []url.URL{*peer}
	cfg.AdvertisePeerUrls = []url.URL{*peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// A test's data is thrown away with its temporary directory: no fsync, small quota, quiet.
	cfg.UnsafeNoFsync = true
	cfg.QuotaBackendBytes = 256 << 20
	cfg.LogLevel = "error"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case err := <-e.Err():
		return err
	case <-time.After(60 * time.Second):
		e.Close()
		return fmt.Errorf("not ready within 60s")
	}
}

// startAggregation runs the ClusterRole aggregation controller (as kube-controller-manager
// does) in the background; its informer retries until the API server below it serves.
func startAggregation(server, token, caFile string) {
	client, err := kubernetes.NewForConfig(&rest.Config{
		Host:            server,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAFile: caFile},
		UserAgent:       "clusterrole-aggregation-controller",
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "clusterrole aggregation: %v\n", err)
		os.Exit(1)
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	controller := clusterroleaggregation.NewClusterRoleAggregation(factory.Rbac().V1().ClusterRoles(), client.RbacV1())
	ctx := context.Background()
	factory.Start(ctx.Done())
	go controller.Run(ctx, 1)
}
