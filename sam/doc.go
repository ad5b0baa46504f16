// Package sam is Segment Anything (SAM, Kirillov et al. 2023) with the ViT image
// encoder, as RFNet's authors use it to cut each object's mask from a point at the
// peak of its attention (facebook/sam-vit-base; rfnet-algorithm.md section 8.1).
//
// It owns the model, loaded from the layout users download from the Hub (a
// transformers SamModel folder: config.json with vision_config,
// prompt_encoder_config and mask_decoder_config, and model.safetensors with
// transformers' key names), and SamProcessor's pre- and post-processing
// (transformers v4.29.2, the version the authors pin). Where transformers and the
// original segment-anything code differ, this package follows transformers and
// says so where it happens.
//
// The three parts and their data:
//
//	VisionEncoder  pixels [B, 3, S, S] → image embeddings [B, C, G, G] (G = S/patch)
//	PromptEncoder  points and labels in encoder pixels → sparse [1, n, C], and the
//	               dense positional encoding [1, G·G, C]
//	MaskDecoder    embeddings + prompts → low-resolution mask logits [1, 3, 4G, 4G]
//	               and predicted IoU [1, 3] (multimask output)
//
// Names: "image embeddings" is the neck's output; "low-res logits" the decoder's
// masks before post-processing; "masks" the logits resized to the input image.
// The prompt encoder's positional encodings and label embeddings are small and
// computed on the host; everything per pixel runs on the backend.
//
// Mask prompts (a previous low-resolution mask fed back in) are not implemented:
// RFNet never passes one, so the prompt encoder's mask_embed weights are not read.
package sam
