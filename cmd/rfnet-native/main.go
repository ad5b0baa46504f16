// Command rfnet-native runs Stable Diffusion and RFNet from one native binary.
//
// Flags may be written with one dash or two (-weights or --weights).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/cuda"
)

// command is one subcommand: its flags are defined on fs, and run does the work.
type command struct {
	summary string
	setup   func(fs *pflag.FlagSet) func() error
}

var commands = map[string]command{
	"generate":     {"generate an image from a prompt with RFNet or plain SD (the default command)", setupGenerate},
	"plan":         {"ask the LLM for a scene plan and write it as plan.json, LMD layout text or a GLIGEN layout (edit it, then generate --plan)", setupPlan},
	"tokenize":     {"print the CLIP token ids of a prompt as JSON", setupTokenize},
	"refine":       {"refine an image with the SDXL refiner 1.0 (img2img, as diffusers' StableDiffusionXLImg2ImgPipeline)", setupRefine},
	"segment":      {"cut masks from an image with Segment Anything, from a point or as RFNet does from an attention map (§8.1)", setupSegment},
	"bench":        {"generate a benchmark's images (prompts × methods × seeds), sharded and resumable", setupBench},
	"bench merge":  {"combine the run folders of shards: rfnet-native bench merge --out DIR SHARD_DIR...", setupBenchMerge},
	"eval":         {"score a benchmark run with a vision judge (gpt4score, gpt4clip)", setupEval},
	"report":       {"write a benchmark run's HTML report", setupReport},
	"download":     {"fetch a model from the Hugging Face Hub into its cache and print where it is", setupDownload},
	"inspect":      {"check a checkpoint and print its family, prediction type, dtypes and parameter counts", setupInspect},
	"info":         {"print the generation parameters stored in a PNG (ours, A1111's): rfnet-native info IMAGE.png [--json]", setupInfo},
	"bench-engine": {"time the engine's calls (text encoder, UNet, RFNet guidance pass, VAE, denoising loop) on full-size random or given weights", setupBenchEngine},
	"gpu-record":   {"write the machine-readable record of a GPU run (docs/gpu-runs/DATE-CARD-COMMIT.json) from gpu-check's logs", setupGPURecord},
	"serve":        {"load the model once and answer HTTP APIs (OpenAI Images, AUTOMATIC1111, RFNet jobs): rfnet-native serve --weights M [--addr 127.0.0.1:7860]", setupServe},
	"version":      {"print the version", setupVersion},
}

const version = "0.1.0-dev"

func main() {
	err := run(os.Args[1:])
	switch {
	case err == nil, errors.Is(err, pflag.ErrHelp):
	case errors.Is(err, context.Canceled):
		// Ctrl-C or SIGTERM: the shell's convention for a command stopped by
		// SIGINT, so scripts tell it from a failure.
		fmt.Fprintln(os.Stderr, "rfnet-native: interrupted:", err)
		os.Exit(130)
	default:
		fmt.Fprintln(os.Stderr, "rfnet-native:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage()
		return nil
	}
	name := args[0]
	if name == "bench" && len(args) > 1 && args[1] == "merge" {
		name, args = "bench merge", args[1:]
	}
	if strings.HasPrefix(name, "-") {
		// rfnet-native -weights M -prompt P: flags without a command mean generate.
		name, args = "generate", append([]string{"generate"}, args...)
	}
	cmd, ok := commands[name]
	if !ok {
		usage()
		return fmt.Errorf("unknown command %q", name)
	}
	fs := pflag.NewFlagSet("rfnet-native "+name, pflag.ContinueOnError)
	fs.SortFlags = false
	do := cmd.setup(fs)
	if err := fs.Parse(longFlags(args[1:], fs)); err != nil {
		return err
	}
	return flagAdvice(do(), fs)
}

// longFlags rewrites -name and -name=value as --name and --name=value when name is
// a long flag of fs, so the single-dash spelling of the design works with pflag.
func longFlags(args []string, fs *pflag.FlagSet) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if a == "--" {
			copy(out[i:], args[i:])
			break
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if len(name) > 1 && fs.Lookup(name) != nil {
				out[i] = "-" + a
			}
		}
	}
	return out
}

func usage() {
	fmt.Fprintf(os.Stderr, "rfnet-native %s: Stable Diffusion and RFNet in one native binary\n\nusage: rfnet-native COMMAND [flags]\n\ncommands:\n", version)
	names := make([]string, 0, len(commands))
	width := 0
	for n := range commands {
		names = append(names, n)
		width = max(width, len(n))
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-*s  %s\n", width, n, commands[n].summary)
	}
	fmt.Fprintln(os.Stderr, "\nrfnet-native COMMAND --help lists a command's flags.")
}

func setupVersion(fs *pflag.FlagSet) func() error {
	return func() error {
		fmt.Println("rfnet-native", version)
		fmt.Println(backendsLine(cuda.Compiled))
		return nil
	}
}

// backendsLine says which backends this binary has, so that whoever
// deploys it can tell a CPU-only build from a CUDA one.
func backendsLine(withCUDA bool) string {
	if withCUDA {
		return "backends: cpu, cuda (kernels for sm_80, sm_86, sm_89 and sm_90, PTX for newer cards; --device auto takes a GPU when one answers)"
	}
	return "backends: cpu (built without CUDA: `make cuda` builds the GPU backend in)"
}
