"""The stages a record passes through, each a function of what the run hands it (base.py).

base.py          the stage interface: Tools in, Outcome out; Origin and Judge declarations
registry.py      the one list of origins and the one list of judges
origins/         where records come from (Self-Instruct, backtranslation, reading, facts)
judges/          the judged stages (dedup, rating, S3FT, SELF, MultiCritique)
ingest.py        the corpus: read, chunk, drop near-duplicate passages
grounding.py     every record's support by its passages
calibrate.py     the judges measured on a labelled check set
mix.py           origins cut to the recipe's shares
select.py        utility-diversity selection to a budget
decontaminate.py nothing exported shares an n-gram with a held-out set
"""
