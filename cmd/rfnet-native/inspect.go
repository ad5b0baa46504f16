package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

func setupInspect(fs *pflag.FlagSet) func() error {
	var m modelFlags
	m.register(fs)
	list := fs.Bool("list", false, "also print every tensor of a .safetensors file (name, dtype, shape)")
	asJSON := fs.Bool("json", false, "print JSON")
	return func() error {
		// Building the model on the meta backend checks every name and shape
		// without reading the weights.
		path, o, err := m.options(context.Background(), tensor.Meta{}, tensor.Float32)
		if err != nil {
			return err
		}
		model, err := pipeline.Inspect(path, o)
		if err != nil {
			err = loadFlagError(err)
			if *list && isFile(path) {
				// The tensors are what someone needs to see when the model does not build.
				if lerr := listTensors(path); lerr != nil {
					return errors.Join(err, lerr)
				}
			}
			return err
		}
		defer model.Close()
		s := struct {
			Path       string               `json:"path"`
			Layout     string               `json:"layout"`
			Family     pipeline.Family      `json:"family"`
			ModelType  string               `json:"model_type"`
			Prediction string               `json:"prediction"`
			Size       [2]int               `json:"native_size"`
			Components []pipeline.Component `json:"components"`
		}{model.Path, model.Layout, model.Variant.Family, model.Variant.Name, string(model.Variant.Sched.PredictionType),
			[2]int{model.Variant.Width, model.Variant.Height}, model.Components}
		if *asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(s)
		}
		fmt.Printf("path:        %s\nlayout:      %s\nfamily:      %s\nmodel type:  %s\nprediction:  %s\nnative size: %dx%d\n",
			s.Path, s.Layout, s.Family, s.ModelType, s.Prediction, s.Size[0], s.Size[1])
		if model.Layout == pipeline.LayoutSingleFile && m.prediction == "" && m.modelType == "" {
			fmt.Println("             (a single file does not record its prediction type: pass --prediction v or --model-type sd21 for the 768 v-models)")
		}
		var total int64
		for _, c := range s.Components {
			fmt.Printf("  %-13s %13d parameters  %v  %s\n", c.Name, c.Parameters, c.DTypes, c.File)
			total += c.Parameters
		}
		fmt.Printf("  %-13s %13d parameters\n", "total", total)
		if *list && model.Layout == pipeline.LayoutSingleFile {
			return listTensors(path)
		}
		return nil
	}
}

// listTensors prints every tensor of a .safetensors file: name, dtype, shape.
func listTensors(path string) error {
	f, err := weights.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, name := range f.Names() {
		info, _ := f.Info(name)
		fmt.Printf("%s %s %v\n", name, info.DType, info.Shape)
	}
	return nil
}
