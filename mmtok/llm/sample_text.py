"""The built-in text sample on which `mmtok extend` checks that the extended model still
behaves like the base model (see `mmtok.llm.preservation`).

Varied on purpose: English prose of several registers, dialogue, Python / JavaScript / SQL /
shell code, JSON, Markdown, arithmetic, French, German, Spanish, Italian and Portuguese,
a chat-style exchange, a list, a URL. Each text is also a prompt: greedy continuations are
compared from the end of every text. Short (a few dozen tokens each) so that a 135M model
on two CPU cores checks all of it in seconds.
"""

from __future__ import annotations

SAMPLE_TEXTS: tuple[str, ...] = (
    "The capital of France is",
    "Once upon a time, in a small village at the edge of a great forest, there lived an old woman who",
    "Photosynthesis is the process by which green plants use sunlight, water and carbon dioxide to",
    "The committee will meet on Tuesday to review the budget, and a decision is expected by",
    "\"Where have you been all day?\" asked her mother. \"I was at the library,\" she said,",
    "In 1969, Neil Armstrong became the first person to walk on the Moon. He famously said",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return n\n",
    "import numpy as np\n\nx = np.linspace(0, 1, 100)\ny = np.sin(2 * np.pi * x)\nprint(",
    "function add(a, b) {\n  return a + b;\n}\n\nconsole.log(add(2, 3));\n// prints",
    "SELECT name, COUNT(*) AS orders\nFROM customers JOIN orders ON customers.id = orders.customer_id\nGROUP BY",
    "$ git clone https://github.com/example/project.git\n$ cd project\n$ pip install -e .\n$",
    '{"name": "Alice", "age": 30, "languages": ["English", "French"], "city":',
    "# Installation\n\nTo install the package, run the following command:\n\n```bash\n",
    "Question: What is 12 times 7?\nAnswer: 12 times 7 is 84.\nQuestion: What is 15 plus 27?\nAnswer:",
    "La tour Eiffel a été construite pour l'Exposition universelle de 1889 à Paris. Elle mesure",
    "Le petit prince demanda au renard : « Qu'est-ce que signifie apprivoiser ? » Le renard répondit",
    "Berlin ist die Hauptstadt Deutschlands und mit rund 3,7 Millionen Einwohnern die",
    "El río Amazonas es el más caudaloso del mundo y atraviesa varios países de América del Sur, como",
    "La pizza margherita è nata a Napoli nel 1889 in onore della regina",
    "O Brasil é o maior país da América do Sul e sua capital é",
    "User: Can you recommend a good book about the history of science?\nAssistant:",
    "Ingredients:\n- 2 cups of flour\n- 1 cup of sugar\n- 3 eggs\n- 1 teaspoon of",
    "The quick brown fox jumps over the lazy dog. This sentence contains every letter of",
    "For more details, see https://en.wikipedia.org/wiki/Machine_learning or read the",
)
