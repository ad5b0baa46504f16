package sched

import "testing"

// Every scheduler has A1111's names, and the lookup takes any case, as New does.
func TestA1111Names(t *testing.T) {
	want := map[string][2]string{"ddim": {"DDIM", ""}, "pndm": {"PLMS", ""}, "euler": {"Euler", ""}, "dpm++2m": {"DPM++ 2M", "Uniform"}}
	for _, name := range Names() {
		sampler, scheduleType, ok := A1111Names(name)
		if w, known := want[name]; !ok || !known || sampler != w[0] || scheduleType != w[1] {
			t.Errorf("A1111Names(%q) = %q, %q, %v; want %q", name, sampler, scheduleType, ok, w)
		}
	}
	if len(Names()) != len(want) {
		t.Errorf("schedulers %v, want those of %v", Names(), want)
	}
	if sampler, _, ok := A1111Names("DPM++2M"); !ok || sampler != "DPM++ 2M" {
		t.Errorf("A1111Names(DPM++2M) = %q, %v", sampler, ok)
	}
	if _, _, ok := A1111Names("heun"); ok {
		t.Error("A1111Names(heun): a scheduler New does not know")
	}
}
