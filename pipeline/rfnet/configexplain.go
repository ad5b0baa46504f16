package rfnet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// configExplain is one line per Config key, for --print-config: what the
// setting does and, where the algorithm notes say more, their section.
var configExplain = map[string]string{
	"num_inference_steps":         "denoising steps of every run (single-object and overall)",
	"guidance_scale":              "classifier-free guidance (CFG) scale of every denoising step",
	"scheduler":                   "the scheduler of every run (the reference uses ddim)",
	"width":                       "image width in pixels, a multiple of 8 (the plan's 512×512 canvas is scaled to it)",
	"height":                      "image height in pixels, a multiple of 8",
	"so_negative_prompt":          "negative prompt of the single-object runs; the plan's negative prompt goes in front (§3.7)",
	"overall_negative_prompt":     "negative prompt of the overall run; the plan's negative prompt goes in front (§3.7)",
	"saa":                         "Semantic Alignment Assessment picks each object's descriptions (false: the main description alone)",
	"reference_constraint":        "the overall run's reference constraint: each object's attention kept like in its own run (§10.3)",
	"suppression_constraint":      "the overall run's suppression constraint: no object attention outside its box (§10.2)",
	"saa_cross_object":            "SAA picks one description per object by similarity across objects (the paper's prose) instead of per object (its code)",
	"bg_seed":                     "seed of the background noise, shared by every run",
	"fg_seed_start":               "seed of the first object's own noise; object j uses fg_seed_start+j (§6.1)",
	"fg_blending_ratio":           "share r of an object's own noise blended into the background noise inside its box, keeping unit variance (§6.4)",
	"so_center_box":               "draw each object alone in a box of its size centered on a floor, not in its scene box (§6.2)",
	"so_floor_padding":            "the centered box stands at 1 - so_floor_padding of the height (§6.2)",
	"loss_scale":                  "single-object runs: the steering loss is multiplied by it before its gradient is taken (§7.3)",
	"loss_threshold":              "single-object runs: steering stops once the last measured (unscaled) loss is at or below it (§7.3)",
	"max_iter":                    "single-object runs: steering iterations allowed at step i (the last entry past the end; §7.3)",
	"max_index_step":              "single-object runs: steps from this index on are not steered (§7.3)",
	"fg_top_p":                    "share of the box's cells whose top attention the foreground term averages (§7.2)",
	"bg_top_p":                    "share of the cells outside the box whose top attention the background term averages (§7.2)",
	"fg_weight":                   "weight of the box loss's foreground term (§7.2)",
	"bg_weight":                   "weight of the box loss's background term (§7.2)",
	"steering_attn_keys":          "the cross-attention layers whose maps the steering losses read (the reference's guidance_attn_keys)",
	"obj_attn_key":                "the cross-attention layer whose word-token attention makes an object's mask (§7.7)",
	"attn_aggregation_step_start": "the mask aggregates the object layer's attention from this step on (§7.7)",
	"mask_gaussian_sigma":         "σ, in cells of the object layer's attention grid, of the blur of the aggregated attention before it is normalized (§8.2)",
	"mask_threshold":              "threshold on the normalized, blurred attention, in (0, 1), above which a cell is in the mask (§8.2)",
	"sam_box":                     "with a SAM model: prompt it with the box of the opened coarse attention mask instead of the attention's peak (§8.1 box mode)",
	"horizontal_shift_only":       "align each object's mask to its box by a horizontal shift alone (§9.1)",
	"compose_box_to_bg":           "also paste each object's own initial noise into the box around its mask in the first latent (§9.2)",
	"frozen_step_ratio":           "share of the overall run's steps whose pasted object region is replaced by the objects' latents (§9.3)",
	"overall_loss_scale":          "overall run: the steering loss is multiplied by it before its gradient is taken (§10.4)",
	"overall_loss_threshold":      "overall run: steering stops once the last measured (unscaled) loss is at or below it (§10.4)",
	"overall_max_iter":            "overall run: steering iterations allowed at step i (the last entry past the end)",
	"overall_max_index_step":      "overall run: steps from this index on are not steered",
	"overall_bg_top_p":            "overall run: share of the cells outside the boxes whose top attention the suppression term averages (§10.2)",
	"suppression_weight":          "weight of the suppression constraint (the reference's hidden supp = 10; §14.10)",
	"ref_ca_loss_weight":          "weight of the reference constraint (§10.3)",
	"ref_ca_scale":                "second factor of the reference constraint (the reference's hidden guid = 15; §14.10)",
	"ref_ca_eps":                  "added to the attention sums the reference constraint normalizes by, so an empty box gives no NaN (§10.3)",
	"remeasure_loss":              "measure the loss afresh at each steered step; the reference carries the last one over, so once it reaches the threshold no later step steers (§14.9)",
	"sdxl_step_ratio":             "with --sdxl: strength of the SDXL refiner pass after the overall run, the share of its 50 steps that run (§11.2)",
	"batch_objects":               "run the single-object runs as one batch (faster on a GPU); false runs them one by one, with less memory (same result within float rounding); a run.json or bench.json without the key ran one by one",
}

// configKeys are Config's JSON keys in the order of its fields.
func configKeys() []string {
	t := reflect.TypeOf(Config{})
	keys := make([]string, t.NumField())
	for i := range keys {
		keys[i], _, _ = strings.Cut(t.Field(i).Tag.Get("json"), ",")
	}
	return keys
}

// ExplainedConfig is what --print-config prints: the configuration under
// "config" and a line on each key under "explain", in the same order. It is
// JSON, so it goes back into --rfnet-config as it is (LoadConfig reads the
// "config" object of such a file).
func ExplainedConfig(c Config) ([]byte, error) {
	config, err := json.MarshalIndent(c, "  ", "  ")
	if err != nil {
		return nil, fmt.Errorf("rfnet: config: %w", err)
	}
	var b bytes.Buffer
	b.WriteString("{\n  \"config\": ")
	b.Write(config)
	b.WriteString(",\n  \"explain\": {")
	for i, k := range configKeys() {
		if i > 0 {
			b.WriteByte(',')
		}
		key, _ := json.Marshal(k)
		line, _ := json.Marshal(configExplain[k])
		fmt.Fprintf(&b, "\n    %s: %s", key, line)
	}
	b.WriteString("\n  }\n}\n")
	return b.Bytes(), nil
}

// unwrapExplained returns the "config" object of an ExplainedConfig file
// (one whose keys are "config" and, optionally, "explain"), and any other
// JSON as it is.
func unwrapExplained(raw []byte) []byte {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return raw // decodeConfig says what is wrong with it
	}
	config, ok := fields["config"]
	if !ok {
		return raw
	}
	for k := range fields {
		if k != "config" && k != "explain" {
			return raw // a config file has no key "config": decodeConfig names both
		}
	}
	return config
}
