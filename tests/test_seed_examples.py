"""The examples of LiteLLM's budget manager page (docs/seed-budget-manager.txt), run on budgetctl.

Each example is the page's code with one change: the import line. ``completion(...)`` is the one
thing not called for real (no network, no key): it returns a canned OpenAI chat completion for
gpt-3.5-turbo, with usage, as LiteLLM's ``completion`` would.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

CANNED = {
    "id": "chatcmpl-seed-1",
    "object": "chat.completion",
    "created": 1767225600,
    "model": "gpt-3.5-turbo-0125",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "I'm doing well, thanks for asking!"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 14, "completion_tokens": 9, "total_tokens": 23},
}


def completion(model: str, messages: list[dict[str, Any]], **_: Any) -> dict[str, Any]:
    """Stands in for ``litellm.completion``: the response a real call would return."""
    assert model == "gpt-3.5-turbo" and messages
    return dict(CANNED)


def price(model: str) -> tuple[Decimal, Decimal]:
    from budgetctl import Ledger

    found = Ledger("price-lookup").costing.price(model)
    return found.input_per_token, found.output_per_token


def test_user_based_rate_limiting() -> None:
    """基于用户的速率限制 (the Colab example)."""
    from budgetctl import BudgetManager

    budget_manager = BudgetManager(project_name="test_project")

    user = "1234"

    # create a budget if new user user
    if not budget_manager.is_valid_user(user):
        budget_manager.create_budget(total_budget=10, user=user)

    # check if a given call can be made
    if budget_manager.get_current_cost(user=user) <= budget_manager.get_total_budget(user):
        response = completion(
            model="gpt-3.5-turbo", messages=[{"role": "user", "content": "Hey, how's it going?"}]
        )
        budget_manager.update_cost(completion_obj=response, user=user)
    else:
        response = "Sorry - no budget!"

    # what the example did, checked
    assert response == CANNED
    input_price, output_price = price("gpt-3.5-turbo-0125")
    expected = 14 * input_price + 9 * output_price
    assert budget_manager.get_current_cost(user) == float(expected) > 0
    assert budget_manager.get_model_cost(user) == {"gpt-3.5-turbo-0125": float(expected)}
    assert budget_manager.get_users() == ["1234"]
    assert budget_manager.get_total_budget(user) == 10.0


def test_text_input_output() -> None:
    """与文本输入/输出结合使用 (the text example)."""
    from budgetctl import BudgetManager

    budget_manager = BudgetManager(project_name="test_project")
    user = "12345"
    budget_manager.create_budget(total_budget=10, user=user, duration="daily")

    input_text = "hello world"
    output_text = "it's a sunny day in san francisco"
    model = "gpt-3.5-turbo"

    budget_manager.update_cost(
        user=user, model=model, input_text=input_text, output_text=output_text
    )
    print(budget_manager.get_current_cost(user))

    # tokens as tiktoken's cl100k_base counts them: 2 and 9, no chat framing added
    input_price, output_price = price(model)
    assert budget_manager.get_current_cost(user) == float(2 * input_price + 9 * output_price)


def test_hosted_usage_line() -> None:
    """LiteLLM API (hosted), 用法: the constructor as the page writes it; it talks to LiteLLM's
    server (not contacted here: these tests are offline, and the constructor sends nothing)."""
    from budgetctl import BudgetManager

    budget_manager = BudgetManager(project_name="<my-unique-project>", client_type="hosted")
    assert budget_manager.api_base == "https://api.litellm.ai"


def test_self_hosted_full_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """自托管 完整代码: the page's code against a server of our own that speaks the protocol
    (``your_custom_api`` is that server's address)."""
    from tests.helpers.budget_server import budget_server

    with budget_server(monkeypatch) as server:
        your_custom_api = server.url
        from budgetctl import BudgetManager

        budget_manager = BudgetManager(
            project_name="<my-unique-project>", client_type="hosted", api_base=your_custom_api
        )

        user = "1234"

        # create a budget if new user user
        if not budget_manager.is_valid_user(user):
            budget_manager.create_budget(
                total_budget=10, user=user, duration="monthly"
            )  # 👈 duration = 'daily'/'weekly'/'monthly'/'yearly'

        # check if a given call can be made
        if budget_manager.get_current_cost(user=user) <= budget_manager.get_total_budget(user):
            messages = [{"role": "user", "content": "Hey, how's it going?"}]
            response = completion(model="gpt-3.5-turbo", messages=messages)
            budget_manager.update_cost(completion_obj=response, user=user)
        else:
            response = "Sorry - no budget!"

        stored = server.projects["<my-unique-project>"][user]
        input_price, output_price = price("gpt-3.5-turbo-0125")
        assert stored["current_cost"] == float(14 * input_price + 9 * output_price)
        assert stored["total_budget"] == 10.0


def test_the_full_code_with_a_local_client() -> None:
    """The hosted 'full code' example, monthly, with a local client."""
    from budgetctl import BudgetManager

    budget_manager = BudgetManager(project_name="my-unique-project")

    user = "1234"

    # create a budget if new user user
    if not budget_manager.is_valid_user(user):
        budget_manager.create_budget(
            total_budget=10, user=user, duration="monthly"
        )  # 👈 duration = 'daily'/'weekly'/'monthly'/'yearly'

    # check if a given call can be made
    if budget_manager.get_current_cost(user=user) <= budget_manager.get_total_budget(user):
        response = completion(
            model="gpt-3.5-turbo", messages=[{"role": "user", "content": "Hey, how's it going?"}]
        )
        budget_manager.update_cost(completion_obj=response, user=user)
    else:
        response = "Sorry - no budget!"

    assert response == CANNED
    assert budget_manager.get_current_cost(user) > 0
    assert budget_manager.save_data() == {"status": "success"}


def test_a_user_out_of_budget_gets_the_examples_else_branch() -> None:
    from budgetctl import BudgetManager

    budget_manager = BudgetManager(project_name="test_project")
    user = "broke"
    budget_manager.create_budget(total_budget=0.00001, user=user)
    budget_manager.update_cost(completion_obj=completion("gpt-3.5-turbo", [{}]), user=user)

    if budget_manager.get_current_cost(user=user) <= budget_manager.get_total_budget(user):
        response = completion(
            model="gpt-3.5-turbo", messages=[{"role": "user", "content": "Hey, how's it going?"}]
        )
    else:
        response = "Sorry - no budget!"
    assert response == "Sorry - no budget!"
