// A stand-in for cluster-proportional-autoscaler (CPA), built only for the lab:
// the real CPA's source is not on the Go module proxy this lab builds from.
// It implements CPA's command-line flags and its "linear" mode the way CPA
// documents them, so the collection's DNS autoscaler manifest runs unchanged:
//
//	replicas = max(ceil(cores/coresPerReplica), ceil(nodes/nodesPerReplica))
//	clamped to [min, max]; at least 2 when preventSinglePointFailure and nodes > 1.
//
// Parameters come from the ConfigMap named by --configmap (key "linear"), which
// is created from --default-params when missing.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"strings"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

var version = "unknown"

type linearParams struct {
	CoresPerReplica           float64 `json:"coresPerReplica"`
	NodesPerReplica           float64 `json:"nodesPerReplica"`
	Min                       int32   `json:"min"`
	Max                       int32   `json:"max"`
	PreventSinglePointFailure bool    `json:"preventSinglePointFailure"`
	IncludeUnschedulableNodes bool    `json:"includeUnschedulableNodes"`
}

func replicas(p linearParams, nodes, cores int) int32 {
	want := int32(1)
	if p.CoresPerReplica > 0 {
		want = max(want, int32(math.Ceil(float64(cores)/p.CoresPerReplica)))
	}
	if p.NodesPerReplica > 0 {
		want = max(want, int32(math.Ceil(float64(nodes)/p.NodesPerReplica)))
	}
	if p.Max > 0 && want > p.Max {
		want = p.Max
	}
	if want < p.Min {
		want = p.Min
	}
	if p.PreventSinglePointFailure && nodes > 1 && want < 2 {
		want = 2
	}
	return want
}

func main() {
	namespace := flag.String("namespace", "kube-system", "namespace of the target and the ConfigMap")
	configmap := flag.String("configmap", "", "ConfigMap holding the scaling parameters")
	target := flag.String("target", "", "target to scale, as deployment/NAME or replicaset/NAME")
	defaults := flag.String("default-params", "", "JSON parameters written when the ConfigMap is missing")
	period := flag.Int("poll-period-seconds", 10, "seconds between two checks")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Bool("logtostderr", true, "accepted for compatibility")
	flag.Int("v", 0, "accepted for compatibility")
	flag.String("nodelabels", "", "accepted for compatibility (not implemented)")
	flag.Parse()
	if *showVersion {
		fmt.Println("kubeforge-lab cpa-standin", version)
		return
	}
	kind, name, ok := strings.Cut(*target, "/")
	if !ok || *configmap == "" {
		log.Fatalf("--target=KIND/NAME and --configmap are required")
	}
	resource := map[string]string{"deployment": "deployments", "replicaset": "replicasets"}[strings.ToLower(kind)]
	if resource == "" {
		log.Fatalf("unsupported target kind %q", kind)
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		log.Fatalf("in-cluster config: %v", err)
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	for {
		if err := once(client, *namespace, *configmap, *defaults, resource, name); err != nil {
			log.Printf("error: %v", err)
		}
		time.Sleep(time.Duration(*period) * time.Second)
	}
}

func params(ctx context.Context, c kubernetes.Interface, ns, name, defaults string) (linearParams, error) {
	var p linearParams
	cm, err := c.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		var d map[string]json.RawMessage
		if err := json.Unmarshal([]byte(defaults), &d); err != nil {
			return p, fmt.Errorf("--default-params: %w", err)
		}
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Data: map[string]string{}}
		for k, v := range d {
			cm.Data[k] = string(v)
		}
		if cm, err = c.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return p, err
		}
	} else if err != nil {
		return p, err
	}
	raw, ok := cm.Data["linear"]
	if !ok {
		return p, fmt.Errorf("configmap %s/%s has no \"linear\" key (only linear mode is implemented)", ns, name)
	}
	return p, json.Unmarshal([]byte(raw), &p)
}

func once(c kubernetes.Interface, ns, cmName, defaults, resource, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := params(ctx, c, ns, cmName, defaults)
	if err != nil {
		return err
	}
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	count, cores := 0, 0
	for _, n := range nodes.Items {
		if n.Spec.Unschedulable && !p.IncludeUnschedulableNodes {
			continue
		}
		count++
		cores += int(n.Status.Allocatable.Cpu().Value())
	}
	want := replicas(p, count, cores)
	scale, err := scaleGet(ctx, c, ns, resource, name)
	if err != nil {
		return err
	}
	if scale.Spec.Replicas == want {
		return nil
	}
	log.Printf("scaling %s/%s from %d to %d replicas (%d nodes, %d cores)", resource, name,
		scale.Spec.Replicas, want, count, cores)
	scale.Spec.Replicas = want
	return scaleUpdate(ctx, c, ns, resource, name, scale)
}

func scaleGet(ctx context.Context, c kubernetes.Interface, ns, resource, name string) (*autoscalingv1.Scale, error) {
	if resource == "deployments" {
		return c.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
	}
	return c.AppsV1().ReplicaSets(ns).GetScale(ctx, name, metav1.GetOptions{})
}

func scaleUpdate(ctx context.Context, c kubernetes.Interface, ns, resource, name string, s *autoscalingv1.Scale) error {
	var err error
	if resource == "deployments" {
		_, err = c.AppsV1().Deployments(ns).UpdateScale(ctx, name, s, metav1.UpdateOptions{})
	} else {
		_, err = c.AppsV1().ReplicaSets(ns).UpdateScale(ctx, name, s, metav1.UpdateOptions{})
	}
	return err
}
