package llm

import (
	"encoding/json"
	"strings"
)

// TemplateVersion names the prompt template; it is part of the cache key, so
// changing the template invalidates cached answers.
const TemplateVersion = "rfnet-native/json-1"

// instructions is our own wording of what RFNet's stage 1 needs (see the
// algorithm notes, §3.2): objects and boxes, a description per object in the
// form of a post-modifier, two alternative description sets, a background
// prompt and a negative prompt.
const instructions = `You plan the layout of a picture for an image generator that draws each object separately and then composes them.

Given a caption, return JSON with these fields:
- "objects": the things the caption mentions that should appear in the picture. Words like "in", "on", "at", "of", "to" are not objects, and neither are verbs. Keep the article in each name ("a cat", not "cat"). For each object give:
  - "name": the words of the caption that name it;
  - "box": [x, y, width, height] in whole pixels on a 512x512 canvas whose top-left corner is (0, 0) and bottom-right corner is (512, 512). No box may cover the whole canvas;
  - "description": a short phrase that follows the name directly ("<name> <description>"), so write it like "crouching low, ready to pounce", not like a sentence. Use common sense about the scene and look for what the caption implies: reversed roles, metaphors, cultural or seasonal knowledge, physical cause and effect. When nothing applies, invent a plausible detail;
  - "alternatives": two more such phrases for the same object, each consistent with the scene.
- "background": a short description of the scene without the objects.
- "negative": things that must not appear, often "". When the caption is a metaphor, name what must not be drawn literally.

Answer with the JSON object only.`

// example is one worked example of the template (written for this project).
type example struct {
	Caption string
	Answer  jsonReply
}

func obj(name string, box [4]float64, desc string, alts ...string) jsonObject {
	return jsonObject{name, box[:], desc, alts}
}

// examples cover, in order, a role reversal between two animals, a person
// moving in an unusual way, a metaphor (the negative prompt names the animal),
// a custom that needs date and culture knowledge, and physical cause and effect.
var examples = []example{
	{"a rabbit stalking a fox", jsonReply{
		Objects: []jsonObject{
			obj("a rabbit", [4]float64{40, 250, 170, 180}, "crouched low in the grass with narrowed, hunting eyes",
				"creeping forward with ears flat like a predator", "tense and focused, about to pounce"),
			obj("a fox", [4]float64{280, 200, 200, 220}, "glancing back nervously, tail tucked",
				"backing away with a startled look", "fur bristling, poised to flee"),
		},
		Background: "a meadow at the edge of a forest in early morning light"}},
	{"a businessman commuting on a pogo stick", jsonReply{
		Objects: []jsonObject{
			obj("a businessman", [4]float64{170, 60, 170, 420}, "in a grey suit and tie, bouncing mid-air on a pogo stick, briefcase in hand",
				"jumping high on a pogo stick, tie flying upward", "balancing on a pogo stick among commuters, coffee cup in hand"),
		},
		Background: "a busy city sidewalk at rush hour"}},
	{"a girl as quiet as a mouse", jsonReply{
		Objects: []jsonObject{
			obj("a girl", [4]float64{160, 110, 190, 380}, "tiptoeing silently with a finger to her lips",
				"sitting very still in a corner, barely breathing", "moving softly in socks, careful not to make a sound"),
		},
		Background: "a dim library with tall wooden shelves", Negative: "mouse"}},
	{"carolers at a front door on the evening of December 24th", jsonReply{
		Objects: []jsonObject{
			obj("carolers", [4]float64{20, 170, 300, 320}, "in scarves and wool hats, singing from song sheets by lantern light",
				"bundled in winter coats, mouths open in song", "holding candles, breath visible in the cold air"),
			obj("a front door", [4]float64{330, 90, 160, 380}, "decorated with a holly wreath, warm light spilling out",
				"red and wooden, garland over the frame", "half open, a family peeking out"),
		},
		Background: "a snowy village street at night with string lights"}},
	{"a glass of water left in the sun on a desert rock", jsonReply{
		Objects: []jsonObject{
			obj("a glass of water", [4]float64{190, 180, 130, 200}, "half evaporated, with a ring of residue and tiny bubbles",
				"sweating droplets down the side, water level low", "glinting in harsh sunlight, the rim dusted with sand"),
		},
		Background: "a flat sandstone rock in a hot desert under a blazing sun"}},
}

// renderTemplate builds the one user message sent to the LLM: instructions,
// worked examples, then the caption. The caption is trimmed and loses a final
// period, as the reference does.
func renderTemplate(caption string) string {
	var b strings.Builder
	b.WriteString(instructions)
	b.WriteString("\n\n")
	for _, ex := range examples {
		ans, _ := json.Marshal(ex.Answer)
		b.WriteString("Caption: " + ex.Caption + "\nAnswer: " + string(ans) + "\n\n")
	}
	b.WriteString("Caption: " + CleanCaption(caption) + "\nAnswer:")
	return b.String()
}

// CleanCaption trims the caption and removes a trailing period.
func CleanCaption(c string) string { return strings.TrimSuffix(strings.TrimSpace(c), ".") }

// planSchema is the JSON schema of the answer, for servers that support
// structured outputs.
var planSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "objects": {"type": "array", "items": {"type": "object", "properties": {
      "name": {"type": "string"},
      "box": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
      "description": {"type": "string"},
      "alternatives": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2}},
      "required": ["name", "box", "description", "alternatives"], "additionalProperties": false}},
    "background": {"type": "string"},
    "negative": {"type": "string"}
  },
  "required": ["objects", "background", "negative"],
  "additionalProperties": false
}`)
