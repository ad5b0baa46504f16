package rfnet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// renamedKeys are the Config keys that earlier versions wrote under another
// name, each with that name: both said "guidance" for what is not
// classifier-free guidance. The old names still read, so that an rfnet
// config, a run.json or a benchmark's bench.json written before the rename
// loads as it did.
var renamedKeys = []struct{ key, old string }{
	{"steering_attn_keys", "guidance_attn_keys"},
	{"reference_constraint", "guidance_constraint"},
}

// addedKeys are Config keys that came after files were written without them
// (run.json, bench.json), each with how to set what such a file's run did: a
// recorded file that lacks one reads as that value, not as zero nor as
// today's default, so that an earlier benchmark run's settings still equal
// what it ran with. batch_objects came off by default: a file without it ran
// the objects one by one. Only recorded files (UnmarshalJSON) read so; a
// config file or a job's settings (LoadConfig, ParseConfig) lacking a key
// keeps its default.
var addedKeys = []struct {
	key string
	set func(c *Config)
}{
	{"sdxl_step_ratio", func(c *Config) { c.SDXLStepRatio = Default().SDXLStepRatio }},
	{"batch_objects", func(c *Config) { c.BatchObjects = false }},
}

// UnmarshalJSON reads c's keys, under their names or their old ones (see
// renamedKeys), over what c holds. Keys Config does not have are ignored, as
// encoding/json ignores them; LoadConfig refuses them.
func (c *Config) UnmarshalJSON(raw []byte) error { return decodeConfig(raw, c, false) }

// decodeConfig reads the JSON object raw over c; strict refuses keys that
// Config does not have. A key given under both its name and its old one is
// an error: which one was meant cannot be told.
func decodeConfig(raw []byte, c *Config, strict bool) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("a JSON %s, want an object of settings", te.Value)
		}
		return err
	}
	for _, a := range addedKeys {
		if _, ok := fields[a.key]; !ok && !strict {
			a.set(c)
		}
	}
	renamed := false
	for _, r := range renamedKeys {
		v, ok := fields[r.old]
		if !ok {
			continue
		}
		if _, both := fields[r.key]; both {
			return fmt.Errorf("both %s and %s, its old name: keep %s", r.key, r.old, r.key)
		}
		delete(fields, r.old)
		fields[r.key] = v
		renamed = true
	}
	if renamed {
		raw, _ = json.Marshal(fields) // RawMessages, which marshal as they are
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if strict {
		dec.DisallowUnknownFields()
	}
	type plain Config // Config's fields without this UnmarshalJSON, which would recurse
	err := dec.Decode((*plain)(c))
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		// The field's key and the value's type, without the name of plain.
		return &KeyError{Key: te.Field, Err: fmt.Errorf("%s: a JSON %s, want %s", te.Field, te.Value, te.Type)}
	}
	if err != nil {
		// encoding/json has no type for an unknown key: its name is in the message.
		if key, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return &KeyError{Key: strings.Trim(key, `"`), Err: err}
		}
	}
	return err
}
