"""One charge through LiteLLM's BudgetManager, as a script run per request would do it.

Runs in bench/.venv-litellm with ``./user_cost.json`` (LiteLLM keeps it in the working
directory). ``update_cost`` saves in a background thread; ``save_data()`` at the end saves once
more, synchronously, so the script has written the file when it exits.

usage: python litellm_charge.py USER MODEL INPUT_TEXT OUTPUT_TEXT
"""

import sys

from litellm import BudgetManager

user, model, input_text, output_text = sys.argv[1:5]
manager = BudgetManager(project_name="bench")
manager.update_cost(user=user, model=model, input_text=input_text, output_text=output_text)
manager.save_data()
