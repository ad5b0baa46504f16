package vae

import (
	"fmt"

	"github.com/rfnet/rfnet-native/internal/jsonconfig"
)

// Config follows the keys of diffusers' AutoencoderKL config.json.
type Config struct {
	InChannels       int      `json:"in_channels"`
	OutChannels      int      `json:"out_channels"`
	LatentChannels   int      `json:"latent_channels"`
	BlockOutChannels []int    `json:"block_out_channels"`
	LayersPerBlock   int      `json:"layers_per_block"`
	NormNumGroups    int      `json:"norm_num_groups"`
	ScalingFactor    float64  `json:"scaling_factor"`
	DownBlockTypes   []string `json:"down_block_types"`
	UpBlockTypes     []string `json:"up_block_types"`
	// ForceUpcast says the autoencoder overflows in fp16 (the SDXL VAE does):
	// diffusers' SDXL pipelines then run it in fp32. SD 1.x/2.x pipelines
	// ignore the key, so SD leaves it unset; a fixed VAE (such as
	// madebyollin/sdxl-vae-fp16-fix) sets it false.
	ForceUpcast bool `json:"force_upcast"`
}

// SD is the autoencoder shared by SD 1.x and 2.x.
func SD() Config {
	return Config{InChannels: 3, OutChannels: 3, LatentChannels: 4, BlockOutChannels: []int{128, 256, 512, 512},
		LayersPerBlock: 2, NormNumGroups: 32, ScalingFactor: 0.18215}
}

// SDXL is the autoencoder of SDXL and its refiner (vae/config.json of
// stabilityai/stable-diffusion-xl-refiner-1.0): SD's architecture, retrained,
// with its own latent scale, and fp16 overflow noted.
func SDXL() Config {
	c := SD()
	c.ScalingFactor = 0.13025
	c.ForceUpcast = true
	c.DownBlockTypes = []string{"DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"}
	c.UpBlockTypes = []string{"UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"}
	return c
}

// LoadConfig reads vae/config.json; keys it lacks keep base's values.
func LoadConfig(path string, base Config) (Config, error) {
	return jsonconfig.Load("vae", path, base, Config.Validate)
}

// Validate checks the config describes an autoencoder this package builds.
func (c Config) Validate() error {
	if len(c.BlockOutChannels) < 1 || c.LayersPerBlock < 1 || c.LatentChannels < 1 || c.InChannels < 1 || c.OutChannels < 1 {
		return fmt.Errorf("vae: config: block_out_channels %v, layers_per_block %d, latent_channels %d", c.BlockOutChannels, c.LayersPerBlock, c.LatentChannels)
	}
	if c.ScalingFactor <= 0 {
		return fmt.Errorf("vae: config: scaling_factor %v must be positive", c.ScalingFactor)
	}
	for i, ch := range c.BlockOutChannels {
		if c.NormNumGroups < 1 || ch%c.NormNumGroups != 0 {
			return fmt.Errorf("vae: config: block_out_channels[%d] = %d is not a multiple of norm_num_groups %d", i, ch, c.NormNumGroups)
		}
	}
	for _, t := range c.DownBlockTypes {
		if t != "DownEncoderBlock2D" {
			return fmt.Errorf("vae: config: down block type %q is not supported", t)
		}
	}
	for _, t := range c.UpBlockTypes {
		if t != "UpDecoderBlock2D" {
			return fmt.Errorf("vae: config: up block type %q is not supported", t)
		}
	}
	return nil
}
