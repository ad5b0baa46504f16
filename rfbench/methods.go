package rfbench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/rfnet/rfnet-native/pipeline/rfnet"
)

// Method is one way of generating a benchmark's images.
type Method struct {
	Name string
	// SD is plain Stable Diffusion: no plan, no RFNet.
	SD bool
	// Without is what an RFNet method turns off: the paper's ablations.
	Without rfnet.Ablation
	// SDXL refines the image with the SDXL refiner as the published run
	// does (§11.2, rfnet.SDXLImageRequest); bench needs --sdxl-weights.
	SDXL bool
}

// methods are the methods a benchmark compares, in the order --methods lists
// them: plain Stable Diffusion, RFNet, RFNet without each of its parts, with
// one part alone, and without all three. The rows of the paper's ablation
// table (§10.6: SAA, reference constraint, suppression constraint) are
// rfnet-none, rfnet-saa-only, rfnet-reference-only, rfnet-no-saa and rfnet.
var methods = []Method{
	{Name: "sd", SD: true},
	{Name: "rfnet"},
	{Name: "rfnet-no-saa", Without: rfnet.Ablation{SAA: true}},
	{Name: "rfnet-no-reference", Without: rfnet.Ablation{Reference: true}},
	{Name: "rfnet-no-suppression", Without: rfnet.Ablation{Suppression: true}},
	{Name: "rfnet-saa-only", Without: rfnet.Ablation{Reference: true, Suppression: true}},
	{Name: "rfnet-reference-only", Without: rfnet.Ablation{SAA: true, Suppression: true}},
	{Name: "rfnet-none", Without: rfnet.Ablation{SAA: true, Reference: true, Suppression: true}},
	{Name: "sd-sdxl", SD: true, SDXL: true},
	{Name: "rfnet-sdxl", SDXL: true},
}

// TurnsOff says what the method turns off, for --list-methods: RFNet as a
// whole for plain SD, else the parts of RFNet its ablation names; and what
// it adds, the SDXL refiner pass.
func (m Method) TurnsOff() string {
	s := m.turnsOff()
	if m.SDXL {
		s += "; then the SDXL refiner at 1024×1024 (§11.2; needs --sdxl-weights)"
	}
	return s
}

func (m Method) turnsOff() string {
	if m.SD {
		return "all of RFNet: plain Stable Diffusion, no plan"
	}
	var parts []string
	for _, p := range []struct {
		off  bool
		name string
	}{
		{m.Without.SAA, "SAA (each object's main description alone)"},
		{m.Without.Reference, "the reference constraint"},
		{m.Without.Suppression, "the suppression constraint"},
	} {
		if p.off {
			parts = append(parts, p.name)
		}
	}
	if len(parts) == 0 {
		return "nothing: RFNet whole"
	}
	return strings.Join(parts, ", ")
}

// ListMethods writes the methods, in order, one a line: the name and what
// it turns off.
func ListMethods(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "method\tturns off")
	for _, m := range methods {
		fmt.Fprintf(tw, "%s\t%s\n", m.Name, m.TurnsOff())
	}
	return tw.Flush()
}

// renamedMethods maps the earlier name of a method to its name now. The old
// name still means that method, and stays the name of the items made under
// it (their folder, their sidecars' method, bench.json's methods): bench with
// the old name resumes an earlier run instead of making its images again
// under the new one.
var renamedMethods = map[string]string{"rfnet-no-guidance": "rfnet-no-reference"}

// MethodNames are the names of the methods, in order (the old names of
// renamed ones left out).
func MethodNames() []string {
	names := make([]string, len(methods))
	for i, m := range methods {
		names[i] = m.Name
	}
	return names
}

// lookupMethod returns the method called name, or once called name.
func lookupMethod(name string) (Method, bool) {
	if now, ok := renamedMethods[name]; ok {
		name = now
	}
	for _, m := range methods {
		if m.Name == name {
			return m, true
		}
	}
	return Method{}, false
}

// ParseMethods checks a comma-separated method list. An old method name is
// kept as it is (see renamedMethods), with a warning on log (may be nil).
func ParseMethods(s string, log io.Writer) ([]string, error) {
	var out []string
	for _, m := range strings.Split(s, ",") {
		m = strings.TrimSpace(m)
		if _, ok := lookupMethod(m); !ok {
			return nil, fmt.Errorf("rfbench: unknown method %q (choose from %s)", m, strings.Join(MethodNames(), ", "))
		}
		if now, ok := renamedMethods[m]; ok && log != nil {
			fmt.Fprintf(log, "rfnet-native: bench: warning: method %s is now called %s; the old name still works, and names the images made under it\n", m, now)
		}
		out = append(out, m)
	}
	return out, nil
}

// NeedsPlanner reports whether any of the methods plans a layout (all but
// plain Stable Diffusion do).
func NeedsPlanner(names []string) bool {
	for _, name := range names {
		if m, ok := lookupMethod(name); ok && !m.SD {
			return true
		}
	}
	return false
}

// NeedsRefiner reports whether any of the methods runs the SDXL refiner.
func NeedsRefiner(names []string) bool {
	for _, name := range names {
		if m, ok := lookupMethod(name); ok && m.SDXL {
			return true
		}
	}
	return false
}
