# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # PatchCore features and residuals
#
# This chapter is being written: it will use the fsad modules as they land.

# %% tags=["parameters"]
config = ""  # run configuration; "" = "ci" on the embedded data, "quick" on real data
data_root = ""  # "" = $FSAD_DATA if set, else the embedded dataset; "embedded" forces it

# %%
print("placeholder")
