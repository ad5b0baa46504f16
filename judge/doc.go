// Package judge scores benchmark images with a vision-language model through
// an OpenAI-compatible endpoint. GPT4Score follows the paper's two-turn
// protocol: the model first describes the image, then rates 0-100 how well it
// matches the prompt against a rubric, answering JSON. GPT4-CLIP takes the
// model's description and scores its similarity to the prompt with the CLIP
// text encoder of the loaded checkpoint (see CLIPScore for the definition).
// Answers are cached, requests retried, replies parsed leniently, and an item
// whose reply cannot be read is recorded as failed, never given a score.
package judge
