package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// manifestDir holds the Kubernetes manifests, relative to this package;
// messages name it from the repository root.
const (
	manifestDir         = "k8s"
	manifestDirFromRoot = "deploy/" + manifestDir
)

// apiTypes maps "apiVersion kind" to the type a document decodes into. A kind
// missing here fails the test rather than passing unchecked: add its type.
var apiTypes = map[string]func() any{
	"apps/v1 Deployment":            func() any { return new(appsv1.Deployment) },
	"batch/v1 Job":                  func() any { return new(batchv1.Job) },
	"v1 PersistentVolumeClaim":      func() any { return new(corev1.PersistentVolumeClaim) },
	"v1 Service":                    func() any { return new(corev1.Service) },
	"policy/v1 PodDisruptionBudget": func() any { return new(policyv1.PodDisruptionBudget) },
}

// object is one document of a manifest file, decoded into its API type.
type object struct {
	where string // file and document number, for messages: "serve.yaml#2"
	kind  string
	name  string
	value any // *appsv1.Deployment, *corev1.Service, ...
}

// decodeDocument decodes one YAML document strictly: duplicate keys, unknown
// fields, wrong types and kinds without an entry in apiTypes are errors.
func decodeDocument(doc []byte) (kind, name string, value any, err error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return "", "", nil, err
	}
	var head struct {
		metav1.TypeMeta
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(js, &head); err != nil {
		return "", "", nil, err
	}
	newValue, ok := apiTypes[head.APIVersion+" "+head.Kind]
	if !ok {
		return "", "", nil, fmt.Errorf("apiVersion %q kind %q: no API type for it in apiTypes", head.APIVersion, head.Kind)
	}
	if head.Metadata.Name == "" {
		return "", "", nil, errors.New("metadata.name is missing")
	}
	value = newValue()
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(value); err != nil {
		return "", "", nil, err
	}
	return head.Kind, head.Metadata.Name, value, nil
}

// loadManifests decodes every document of every file in manifestDir.
func loadManifests(t *testing.T) []object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(manifestDir, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", manifestDirFromRoot, err)
	}
	var objects []object
	for _, file := range files {
		if ext := filepath.Ext(file); ext != ".yaml" {
			t.Errorf("%s: a manifest ends in .yaml (kubectl apply -f would take it; this test would not)", file)
			continue
		}
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(f))
		for i := 0; ; i++ {
			doc, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", file, i, err)
			}
			if onlyComments(doc) {
				continue
			}
			where := fmt.Sprintf("%s#%d", filepath.Base(file), i)
			kind, name, value, err := decodeDocument(doc)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			objects = append(objects, object{where, kind, name, value})
		}
		f.Close()
	}
	return objects
}

// onlyComments reports whether a document holds nothing but comments and
// blank lines (what precedes a file's first "---", say).
func onlyComments(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		if s := strings.TrimSpace(line); s != "" && s != "---" && !strings.HasPrefix(s, "#") {
			return false
		}
	}
	return true
}

// byKind returns the objects of one kind, as their API type.
func byKind[T any](objects []object) []T {
	var out []T
	for _, o := range objects {
		if v, ok := o.value.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// The decoder is strict: a misspelled or misplaced field, a duplicate key or
// a wrong type is an error, so the real manifests' passing means something.
func TestDecodeDocumentIsStrict(t *testing.T) {
	for _, c := range []struct{ name, doc, want string }{
		{"misspelled field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {replica: 1}\n", `unknown field "replica"`},
		{"field of another type", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80, containerPort: 80}]}\n", `unknown field "containerPort"`},
		{"wrong type", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: http}]}\n", "port"},
		{"duplicate key", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nmetadata: {name: b}\n", "metadata"},
		{"unknown kind", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n", `kind "Pod"`},
		{"no name", "apiVersion: v1\nkind: Service\nmetadata: {}\n", "metadata.name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, _, _, err := decodeDocument([]byte(c.doc)); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one with %q", err, c.want)
			}
		})
	}
}

// Every document of deploy/k8s decodes into its API type; names are unique
// per kind; the files hold what README and the server expect.
func TestManifestsDecodeStrictly(t *testing.T) {
	objects := loadManifests(t)
	seen := map[string]string{}
	for _, o := range objects {
		key := o.kind + "/" + o.name
		if prev, dup := seen[key]; dup {
			t.Errorf("%s: %s is also defined in %s", o.where, key, prev)
		}
		seen[key] = o.where
	}
	for _, want := range []string{"Job/rfbench", "PersistentVolumeClaim/hf-cache", "Deployment/rfnet-serve", "Service/rfnet-serve",
		"PodDisruptionBudget/rfnet-serve", "PersistentVolumeClaim/rfnet-serve-data"} {
		if _, ok := seen[want]; !ok {
			t.Errorf("no %s in %s", want, manifestDirFromRoot)
		}
	}
}

// podTemplate is a workload's pod template, named for messages.
type podTemplate struct {
	owner string
	spec  corev1.PodTemplateSpec
}

func podTemplates(objects []object) []podTemplate {
	var out []podTemplate
	for _, d := range byKind[*appsv1.Deployment](objects) {
		out = append(out, podTemplate{"Deployment/" + d.Name, d.Spec.Template})
	}
	for _, j := range byKind[*batchv1.Job](objects) {
		out = append(out, podTemplate{"Job/" + j.Name, j.Spec.Template})
	}
	return out
}

// Selectors select: a Deployment's its own pods, each Service and
// PodDisruptionBudget a Deployment's pods. An empty selector is refused (a
// budget's would cover every pod of the namespace).
func TestSelectorsMatchThePods(t *testing.T) {
	objects := loadManifests(t)
	deployments := byKind[*appsv1.Deployment](objects)
	selects := func(what string, sel labels.Selector) {
		t.Helper()
		if sel.Empty() {
			t.Errorf("%s: empty selector", what)
			return
		}
		for _, d := range deployments {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				return
			}
		}
		t.Errorf("%s: selector %s matches the pods of no Deployment", what, sel)
	}
	for _, d := range deployments {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Deployment/%s: selector %v (%v) does not match its pod labels %v", d.Name, d.Spec.Selector, err, d.Spec.Template.Labels)
		}
	}
	for _, s := range byKind[*corev1.Service](objects) {
		selects("Service/"+s.Name, labels.SelectorFromSet(s.Spec.Selector))
	}
	for _, p := range byKind[*policyv1.PodDisruptionBudget](objects) {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil {
			t.Errorf("PodDisruptionBudget/%s: %v", p.Name, err)
			continue
		}
		selects("PodDisruptionBudget/"+p.Name, sel)
	}
}

// A named port (a probe's, a Service's targetPort) names a port of the
// container; a numbered one is one of its ports.
func TestPortsNameContainerPorts(t *testing.T) {
	objects := loadManifests(t)
	hasPort := func(c corev1.Container, port string) bool {
		for _, p := range c.Ports {
			if p.Name == port || fmt.Sprint(p.ContainerPort) == port {
				return true
			}
		}
		return false
	}
	for _, pt := range podTemplates(objects) {
		for _, c := range pt.spec.Spec.Containers {
			for name, probe := range map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
				if probe != nil && probe.HTTPGet != nil && !hasPort(c, probe.HTTPGet.Port.String()) {
					t.Errorf("%s container %s: %s port %s is none of the container's ports", pt.owner, c.Name, name, probe.HTTPGet.Port.String())
				}
			}
		}
	}
	for _, s := range byKind[*corev1.Service](objects) {
		for _, sp := range s.Spec.Ports {
			found := false
			for _, d := range byKind[*appsv1.Deployment](objects) {
				if !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
					continue
				}
				for _, c := range d.Spec.Template.Spec.Containers {
					found = found || hasPort(c, sp.TargetPort.String())
				}
			}
			if !found {
				t.Errorf("Service/%s: targetPort %s is no port of the pods it selects", s.Name, sp.TargetPort.String())
			}
		}
	}
}

// Every volume mount names a volume of its pod, and every claim a pod uses is
// defined in deploy/k8s (volumes.yaml, or serve.yaml for the server's own).
func TestVolumesAndClaimsExist(t *testing.T) {
	objects := loadManifests(t)
	claims := map[string]bool{}
	for _, c := range byKind[*corev1.PersistentVolumeClaim](objects) {
		claims[c.Name] = true
	}
	for _, pt := range podTemplates(objects) {
		volumes := map[string]bool{}
		for _, v := range pt.spec.Spec.Volumes {
			volumes[v.Name] = true
			if pvc := v.PersistentVolumeClaim; pvc != nil && !claims[pvc.ClaimName] {
				t.Errorf("%s: volume %s: no PersistentVolumeClaim %s in %s", pt.owner, v.Name, pvc.ClaimName, manifestDirFromRoot)
			}
		}
		for _, c := range pt.spec.Spec.Containers {
			for _, m := range c.VolumeMounts {
				if !volumes[m.Name] {
					t.Errorf("%s container %s: mount %s names no volume of the pod", pt.owner, c.Name, m.Name)
				}
			}
		}
	}
}

// Every Secret key a pod reads is documented in README.md by the command that
// creates it: `kubectl create secret generic NAME --from-literal=KEY=...`.
func TestSecretsAreDocumented(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(readme), "\n")
	documented := func(name, key string) bool {
		return slices.ContainsFunc(lines, func(l string) bool {
			return strings.Contains(l, "kubectl create secret generic "+name+" ") &&
				(strings.Contains(l, "--from-literal="+key+"=") || strings.Contains(l, "--from-file="+key+"="))
		})
	}
	for _, pt := range podTemplates(loadManifests(t)) {
		for _, c := range pt.spec.Spec.Containers {
			for _, e := range c.Env {
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					continue
				}
				ref := e.ValueFrom.SecretKeyRef
				if !documented(ref.Name, ref.Key) {
					t.Errorf("%s: $%s reads Secret %s key %s, which README.md does not show how to create (kubectl create secret generic %s --from-literal=%s=...)",
						pt.owner, e.Name, ref.Name, ref.Key, ref.Name, ref.Key)
				}
			}
		}
	}
}
