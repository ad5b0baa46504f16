// Package jsonconfig reads a model's config.json over the defaults of its
// variant, the way the clip, unet, vae and sched packages load theirs: keys
// the file lacks keep the defaults, keys the package does not know are
// ignored (diffusers' configs carry many that change nothing here), and the
// result is validated. Every error names the file.
package jsonconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/rfnet/rfnet-native/internal/regular"
)

// MaxBytes bounds a config file: one is a few kilobytes (a scheduler's
// trained_betas, the largest, some tens), so a larger file is a weights file
// or another mistake, refused before it fills memory.
const MaxBytes = 16 << 20

// Load reads the JSON object at path over base and checks the result with
// validate. Errors start with pkg (the package's name, as its own errors do)
// and name path; one from decoding names the key or the line at fault, one
// from validate gets "(in path)" after it. base is not changed.
func Load[T any](pkg, path string, base T, validate func(T) error) (T, error) {
	return LoadRebased(pkg, path, base, nil, validate)
}

// LoadRebased is Load for a file whose defaults depend on what it says: the
// file, read once, is decoded over base; rebase (when not nil) chooses the
// defaults that decoded value implies (a model family's, told by one of its
// keys), and the same bytes are decoded again over those before validate.
func LoadRebased[T any](pkg, path string, base T, rebase func(T) T, validate func(T) error) (T, error) {
	var zero T
	raw, err := regular.ReadFileAtMost(path, MaxBytes)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", pkg, err) // regular's errors name path
	}
	c, err := decode(pkg, path, raw, base)
	if err == nil && rebase != nil {
		c, err = decode(pkg, path, raw, rebase(c))
	}
	if err != nil {
		return zero, err
	}
	if err := validate(c); err != nil {
		return zero, fmt.Errorf("%w (in %s)", err, path)
	}
	return c, nil
}

// decode is raw over a copy of base, with errors that name path and where.
func decode[T any](pkg, path string, raw []byte, base T) (T, error) {
	c := detached(base)
	if err := json.Unmarshal(raw, &c); err != nil {
		var zero T
		return zero, fmt.Errorf("%s: %s: %s%w", pkg, path, where(raw, base, err), err)
	}
	return c, nil
}

// where locates a decoding error for its message: the line and column of a
// syntax error, or the key whose value a type's own UnmarshalJSON refused
// (its error cannot know the key). A json.UnmarshalTypeError names its key
// already, so it needs nothing.
func where[T any](raw []byte, base T, err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		before := raw[:min(int(syntax.Offset), len(raw))]
		line := bytes.Count(before, []byte("\n")) + 1
		column := len(before) - bytes.LastIndexByte(before, '\n') - 1 // the offending byte is the last one read
		return fmt.Sprintf("line %d, column %d: ", line, column)
	case errors.As(err, &typ) && typ.Field != "":
		return ""
	}
	// Decode the keys one at a time, in order, until one fails.
	var object map[string]json.RawMessage
	if json.Unmarshal(raw, &object) != nil {
		return ""
	}
	for _, key := range slices.Sorted(maps.Keys(object)) {
		one, _ := json.Marshal(map[string]json.RawMessage{key: object[key]})
		probe := detached(base)
		if json.Unmarshal(one, &probe) != nil {
			return key + ": "
		}
	}
	return ""
}

// detached is a copy of base that shares no memory with it: json.Unmarshal
// decodes an array into a slice's backing array and an object into an
// existing map or pointee, which would otherwise write the file's values into
// the caller's defaults. Only the top-level fields need it: a config's slices
// hold numbers and strings.
func detached[T any](base T) T {
	c := base
	v := reflect.ValueOf(&c).Elem()
	if v.Kind() != reflect.Struct {
		return c
	}
	for i := range v.NumField() {
		f := v.Field(i)
		if !f.CanSet() || f.IsZero() {
			continue
		}
		switch f.Kind() {
		case reflect.Slice:
			f.Set(reflect.AppendSlice(reflect.MakeSlice(f.Type(), 0, f.Len()), f))
		case reflect.Map:
			m := reflect.MakeMapWithSize(f.Type(), f.Len())
			for it := f.MapRange(); it.Next(); {
				m.SetMapIndex(it.Key(), it.Value())
			}
			f.Set(m)
		case reflect.Pointer:
			p := reflect.New(f.Type().Elem())
			p.Elem().Set(f.Elem())
			f.Set(p)
		}
	}
	return c
}
