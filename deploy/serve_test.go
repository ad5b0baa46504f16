package deploy

import (
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// defaultShutdownGrace is serve's --shutdown-grace when the flag is not given
// (docs/serve-api.md, "Operations").
const defaultShutdownGrace = 60 * time.Second

// serveContainer returns the Deployment and container that run `serve`.
func serveContainer(t *testing.T, objects []object) (*appsv1.Deployment, corev1.Container) {
	t.Helper()
	for _, d := range byKind[*appsv1.Deployment](objects) {
		for _, c := range d.Spec.Template.Spec.Containers {
			if len(c.Args) > 0 && c.Args[0] == "serve" {
				return d, c
			}
		}
	}
	t.Fatalf("no Deployment in %s runs serve", manifestDirFromRoot)
	return nil, corev1.Container{}
}

// The serve Deployment agrees with the server and with the image: the port
// the server listens on is the container's and the Service's, the pod
// outlives serve's shutdown grace, the probes ask /healthz, the data folder
// and the Hugging Face cache are on volumes, the GPU is requested, the user
// is the image's non-root one, and the API key comes from a Secret.
func TestServeDeployment(t *testing.T) {
	objects := loadManifests(t)
	im := readImage(t)
	d, c := serveContainer(t, objects)
	pod := d.Spec.Template.Spec

	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("replicas %v, strategy %q: want 1 and Recreate (one GPU; one server per data folder)", d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	if _, tag, ok := strings.Cut(c.Image[strings.LastIndex(c.Image, "/")+1:], ":"); !ok || tag == "latest" {
		t.Errorf("image %s: want a version tag (with latest and IfNotPresent a node keeps its old image)", c.Image)
	}

	addr, _ := flagValue(c.Args, "--addr")
	host, port, _ := strings.Cut(addr, ":")
	if host != "0.0.0.0" || port != im.port {
		t.Errorf("--addr %q, want 0.0.0.0:%s (the image's EXPOSE)", addr, im.port)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != mustAtoi(t, port) {
		t.Errorf("container ports %+v, want one named http on %s", c.Ports, port)
	}
	for _, s := range byKind[*corev1.Service](objects) {
		if s.Name == d.Name && (len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != mustAtoi(t, port) || s.Spec.Type != corev1.ServiceTypeClusterIP) {
			t.Errorf("Service/%s: %s ports %+v, want ClusterIP on %s", s.Name, s.Spec.Type, s.Spec.Ports, port)
		}
	}

	grace := defaultShutdownGrace
	if v, ok := flagValue(c.Args, "--shutdown-grace"); ok {
		var err error
		if grace, err = time.ParseDuration(v); err != nil {
			t.Fatalf("--shutdown-grace %q: %v", v, err)
		}
	}
	termination := time.Duration(0)
	if pod.TerminationGracePeriodSeconds != nil {
		termination = time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	}
	if termination <= grace {
		t.Errorf("terminationGracePeriodSeconds %v, want more than --shutdown-grace %v (else SIGKILL cuts the running job's last writes)", termination, grace)
	}

	for name, probe := range map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != "/healthz" {
			t.Errorf("%s: %+v, want an HTTP GET of /healthz", name, probe)
		}
	}
	// /healthz answers 503 through a graceful shutdown: liveness must not
	// give up on the server before the termination grace is over.
	if l := c.LivenessProbe; l != nil && time.Duration(l.PeriodSeconds*l.FailureThreshold)*time.Second <= termination {
		t.Errorf("livenessProbe fails after %d×%ds, within the termination grace %v", l.FailureThreshold, l.PeriodSeconds, termination)
	}

	mounted := func(what, path string) {
		t.Helper()
		for _, m := range c.VolumeMounts {
			if under(path, m.MountPath) {
				return
			}
		}
		t.Errorf("%s %q is on no volume mount", what, path)
	}
	data, _ := flagValue(c.Args, "--data")
	mounted("--data", data)
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	mounted("HF_HOME", env["HF_HOME"].Value)
	if key := env["RFNET_API_KEY"]; key.ValueFrom == nil || key.ValueFrom.SecretKeyRef == nil || key.Value != "" {
		t.Errorf("RFNET_API_KEY %+v: want it from a Secret, not in the manifest", key)
	}

	if gpu := c.Resources.Limits["nvidia.com/gpu"]; gpu.Cmp(resource.MustParse("1")) != 0 {
		t.Errorf("nvidia.com/gpu limit %v, want 1", gpu.String())
	}
	sc := pod.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != im.uid {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and runAsUser %d (the image's USER)", sc, im.uid)
	}
}

// mustAtoi is a port number from its text.
func mustAtoi(t *testing.T, s string) int32 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		t.Fatalf("port %q: %v", s, err)
	}
	return int32(n)
}
