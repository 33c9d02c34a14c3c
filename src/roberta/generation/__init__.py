"""Text generation for RobertaForCausalLM: generate() over composable logits processors and stopping criteria.

generate.py   settings, prompt, lengths -> a search strategy
search.py     greedy search and sampling          beam.py   beam search and beam sampling
processors.py logits processors (one concept each) stopping.py  stopping criteria
inputs.py     per-step model inputs and positions  config.py GenerationConfig (generation_config.json)
outputs.py    GenerateDecoderOnlyOutput, GenerateBeamDecoderOnlyOutput
Models only provide forward + a key/value cache (roberta.modeling).
"""
from roberta._lazy import lazy_exports

_EXPORTS = {
    "GenerationConfig": "roberta.generation.config",
    "generate": "roberta.generation.generate",
    "GenerateDecoderOnlyOutput": "roberta.generation.outputs",
    "GenerateBeamDecoderOnlyOutput": "roberta.generation.outputs",
    "RepetitionPenalty": "roberta.generation.processors",
    "NoRepeatNGram": "roberta.generation.processors",
    "BadWords": "roberta.generation.processors",
    "MinLength": "roberta.generation.processors",
    "MinNewTokens": "roberta.generation.processors",
    "RemoveInvalidValues": "roberta.generation.processors",
    "Temperature": "roberta.generation.processors",
    "TopK": "roberta.generation.processors",
    "TopP": "roberta.generation.processors",
    "MaxLength": "roberta.generation.stopping",
    "EosToken": "roberta.generation.stopping",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports("roberta.generation", _EXPORTS, globals())
