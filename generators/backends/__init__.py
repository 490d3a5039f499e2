"""LLM backends behind generators/llm.py: vLLM (vllm.py, admission control in
vllm_admission.py), transformers (hf.py), an OpenAI-compatible server (openai.py, its response
cache in response_cache.py) and the scripted fake for unit tests (fake.py)."""
