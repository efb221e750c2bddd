"""Node catalogue of the ComfyUI stand-in: `/object_info` entries plus a tiny evaluator per node.

Only the node types the hub uses (the FLUX.1-schnell graphs) and the model-free ones from the
reference capture are known; any other class_type is rejected exactly like a real server
rejects a node from a missing custom-node pack.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

INT_MAX = 0xFFFFFFFFFFFFFFFF
SAMPLERS = [
    "euler",
    "euler_cfg_pp",
    "euler_ancestral",
    "euler_ancestral_cfg_pp",
    "heun",
    "heunpp2",
    "dpm_2",
    "dpm_2_ancestral",
    "lms",
    "dpm_fast",
    "dpm_adaptive",
    "dpmpp_2s_ancestral",
    "dpmpp_sde",
    "dpmpp_2m",
    "dpmpp_2m_sde",
    "dpmpp_3m_sde",
    "ddpm",
    "lcm",
    "ipndm",
    "deis",
    "res_multistep",
    "gradient_estimation",
    "er_sde",
    "ddim",
    "uni_pc",
    "uni_pc_bh2",
]
SCHEDULERS = [
    "simple",
    "sgm_uniform",
    "karras",
    "exponential",
    "ddim_uniform",
    "beta",
    "normal",
    "linear_quadratic",
    "kl_optimal",
]
UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
DEFAULT_MODELS = {
    "checkpoints": ["flux1-schnell-fp8.safetensors"],
    "diffusion_models": ["flux1-schnell.safetensors"],
    "text_encoders": ["clip_l.safetensors", "t5xxl_fp8_e4m3fn.safetensors"],
    "vae": ["ae.safetensors"],
}


# ---- values flowing along the graph's links ------------------------------------------------------
@dataclass(frozen=True)
class Model:
    name: str


@dataclass(frozen=True)
class Cond:
    text: str


@dataclass(frozen=True)
class Latent:
    width: int
    height: int
    batch: int
    seed: str = ""


@dataclass(frozen=True)
class Image:
    """A lazily rendered image batch: solid colour or the seed-derived 'sampled' pattern."""

    width: int
    height: int
    batch: int
    color: tuple[int, int, int] | None = None
    seed: str = ""
    inverted: bool = False


@dataclass
class NodeDef:
    name: str
    display_name: str
    category: str
    required: dict[str, list]
    output: list[str] = field(default_factory=list)
    optional: dict[str, list] = field(default_factory=dict)
    hidden: dict[str, str] = field(default_factory=dict)
    output_node: bool = False
    description: str = ""
    python_module: str = "nodes"
    never_cached: bool = False  # IS_CHANGED returns a fresh value every run
    progress_steps_input: str | None = None  # input giving the number of progress steps

    def info(self) -> dict[str, Any]:
        inputs: dict[str, Any] = {"required": self.required}
        order: dict[str, list[str]] = {"required": list(self.required)}
        if self.optional:
            inputs["optional"] = self.optional
            order["optional"] = list(self.optional)
        if self.hidden:
            inputs["hidden"] = self.hidden
            order["hidden"] = list(self.hidden)
        return {
            "input": inputs,
            "input_order": order,
            "output": self.output,
            "output_is_list": [False] * len(self.output),
            "output_name": list(self.output),
            "name": self.name,
            "display_name": self.display_name,
            "description": self.description,
            "python_module": self.python_module,
            "category": self.category,
            "output_node": self.output_node,
        }


def _int(default: int, lo: int, hi: int, step: int | None = 1, **extra) -> list:
    opts: dict[str, Any] = {"default": default, "min": lo, "max": hi}
    if step is not None:
        opts["step"] = step
    opts.update(extra)
    return ["INT", opts]


def _combo(values: list[str], **opts) -> list:
    return [values, opts] if opts else [values]


def node_defs(models: dict[str, list[str]] | None = None) -> dict[str, NodeDef]:
    """The catalogue, with loader combos listing the stand-in's 'installed' model files."""
    m = {**DEFAULT_MODELS, **(models or {})}
    save_hidden = {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
    defs = [
        NodeDef(
            "EmptyImage",
            "EmptyImage",
            "image",
            {
                "width": _int(512, 1, 16384),
                "height": _int(512, 1, 16384),
                "batch_size": _int(1, 1, 4096, step=None),
                "color": _int(0, 0, 16777215, display="color"),
            },
            ["IMAGE"],
        ),
        NodeDef(
            "SaveImage",
            "Save Image",
            "image",
            {
                "images": ["IMAGE", {"tooltip": "The images to save."}],
                "filename_prefix": [
                    "STRING",
                    {
                        "default": "ComfyUI",
                        "tooltip": (
                            "The prefix for the file to save. This may include formatting information such as "
                            "%date:yyyy-MM-dd% or %Empty Latent Image.width% to include values from nodes."
                        ),
                    },
                ],
            },
            hidden=save_hidden,
            output_node=True,
            description="Saves the input images to your ComfyUI output directory.",
        ),
        NodeDef(
            "PreviewImage",
            "Preview Image",
            "image",
            {"images": ["IMAGE"]},
            hidden=save_hidden,
            output_node=True,
            description="Saves the input images to your ComfyUI output directory.",
        ),
        NodeDef(
            "SaveImageWebsocket",
            "SaveImageWebsocket",
            "api node/image",
            {"images": ["IMAGE"]},
            output_node=True,
            python_module="custom_nodes.websocket_image_save",
            never_cached=True,
        ),
        NodeDef(
            "ImageScale",
            "Upscale Image",
            "image/upscaling",
            {
                "image": ["IMAGE"],
                "upscale_method": _combo(UPSCALE_METHODS),
                "width": _int(512, 0, 16384),
                "height": _int(512, 0, 16384),
                "crop": _combo(["disabled", "center"]),
            },
            ["IMAGE"],
        ),
        NodeDef("ImageInvert", "Invert Image", "image", {"image": ["IMAGE"]}, ["IMAGE"]),
        NodeDef(
            "CheckpointLoaderSimple",
            "Load Checkpoint",
            "loaders",
            {
                "ckpt_name": _combo(m["checkpoints"], tooltip="The name of the checkpoint (model) to load."),
            },
            ["MODEL", "CLIP", "VAE"],
            description="Loads a diffusion model checkpoint, diffusion models are used to denoise latents.",
        ),
        NodeDef(
            "UNETLoader",
            "Load Diffusion Model",
            "advanced/loaders",
            {
                "unet_name": _combo(m["diffusion_models"]),
                "weight_dtype": _combo(["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"]),
            },
            ["MODEL"],
        ),
        NodeDef(
            "DualCLIPLoader",
            "DualCLIPLoader",
            "advanced/loaders",
            {
                "clip_name1": _combo(m["text_encoders"]),
                "clip_name2": _combo(m["text_encoders"]),
                "type": _combo(["sdxl", "sd3", "flux", "hunyuan_video", "hidream"]),
            },
            ["CLIP"],
            optional={"device": _combo(["default", "cpu"], advanced=True)},
        ),
        NodeDef("VAELoader", "Load VAE", "loaders", {"vae_name": _combo(m["vae"])}, ["VAE"]),
        NodeDef(
            "CLIPTextEncode",
            "CLIP Text Encode (Prompt)",
            "conditioning",
            {
                "text": ["STRING", {"multiline": True, "dynamicPrompts": True, "tooltip": "The text to be encoded."}],
                "clip": ["CLIP", {"tooltip": "The CLIP model used for encoding the text."}],
            },
            ["CONDITIONING"],
        ),
        NodeDef(
            "FluxGuidance",
            "FluxGuidance",
            "advanced/conditioning/flux",
            {
                "conditioning": ["CONDITIONING"],
                "guidance": ["FLOAT", {"default": 3.5, "min": 0.0, "max": 100.0, "step": 0.1}],
            },
            ["CONDITIONING"],
            python_module="comfy_extras.nodes_flux",
        ),
        NodeDef(
            "EmptyLatentImage",
            "Empty Latent Image",
            "latent",
            {
                "width": _int(512, 16, 16384, 8),
                "height": _int(512, 16, 16384, 8),
                "batch_size": _int(1, 1, 4096, step=None),
            },
            ["LATENT"],
        ),
        NodeDef(
            "EmptySD3LatentImage",
            "EmptySD3LatentImage",
            "latent/sd3",
            {
                "width": _int(1024, 16, 16384, 16),
                "height": _int(1024, 16, 16384, 16),
                "batch_size": _int(1, 1, 4096, step=None),
            },
            ["LATENT"],
            python_module="comfy_extras.nodes_sd3",
        ),
        NodeDef(
            "KSampler",
            "KSampler",
            "sampling",
            {
                "model": ["MODEL"],
                "seed": _int(0, 0, INT_MAX, step=None, control_after_generate=True),
                "steps": _int(20, 1, 10000, step=None),
                "cfg": ["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}],
                "sampler_name": _combo(SAMPLERS),
                "scheduler": _combo(SCHEDULERS),
                "positive": ["CONDITIONING"],
                "negative": ["CONDITIONING"],
                "latent_image": ["LATENT"],
                "denoise": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}],
            },
            ["LATENT"],
            progress_steps_input="steps",
        ),
        NodeDef("VAEDecode", "VAE Decode", "latent", {"samples": ["LATENT"], "vae": ["VAE"]}, ["IMAGE"]),
    ]
    return {d.name: d for d in defs}


MODEL_LOADERS = {"CheckpointLoaderSimple", "UNETLoader", "DualCLIPLoader", "VAELoader"}


def evaluate(class_type: str, inputs: dict[str, Any]) -> tuple:
    """Compute a node's outputs from its resolved inputs (all cheap: images render lazily)."""
    if class_type == "EmptyImage":
        c = int(inputs["color"])
        return (
            Image(
                int(inputs["width"]),
                int(inputs["height"]),
                int(inputs["batch_size"]),
                color=((c >> 16) & 255, (c >> 8) & 255, c & 255),
            ),
        )
    if class_type == "ImageScale":
        img: Image = inputs["image"]
        return (replace(img, width=int(inputs["width"]) or img.width, height=int(inputs["height"]) or img.height),)
    if class_type == "ImageInvert":
        img = inputs["image"]
        return (replace(img, inverted=not img.inverted),)
    if class_type == "CheckpointLoaderSimple":
        n = inputs["ckpt_name"]
        return (Model(n), Model(n + ":clip"), Model(n + ":vae"))
    if class_type in ("UNETLoader", "VAELoader"):
        return (Model(str(next(iter(inputs.values())))),)
    if class_type == "DualCLIPLoader":
        return (Model(f"{inputs['clip_name1']}+{inputs['clip_name2']}"),)
    if class_type == "CLIPTextEncode":
        return (Cond(str(inputs["text"])),)
    if class_type == "FluxGuidance":
        return (inputs["conditioning"],)
    if class_type in ("EmptyLatentImage", "EmptySD3LatentImage"):
        return (Latent(int(inputs["width"]), int(inputs["height"]), int(inputs["batch_size"])),)
    if class_type == "KSampler":
        lat: Latent = inputs["latent_image"]
        return (replace(lat, seed=f"{inputs['seed']}|{inputs['positive'].text}|{inputs['steps']}"),)
    if class_type == "VAEDecode":
        lat = inputs["samples"]
        return (Image(lat.width, lat.height, lat.batch, seed=lat.seed or "latent"),)
    return ()
