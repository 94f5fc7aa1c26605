"""Prices and the cost of calls: the shipped catalogue, the layered price book and cost arithmetic.

```python
from relaygate.pricing import PriceBook, cost_of

book = PriceBook()                                   # the shipped prices.yaml
price = book.price("openai", "gpt-4o-2024-08-06")    # -> gpt-4o's ModelPrice
ctx.cost_usd = cost_of(ctx.usage, price)             # None when the model or a rate is unknown
```

Prices are USD per 1M tokens (and per image for image models). The package reads no configuration itself:
the config's ``prices:`` mapping (``provider/model`` -> :class:`ModelPrice`), the model registry and the
projects' custom prices are handed to the :class:`PriceBook` by whoever owns them.
"""

from relaygate.pricing.book import PriceBook
from relaygate.pricing.catalogue import Catalogue, CatalogueError, CatalogueKind, default_catalogue, load_catalogue
from relaygate.pricing.cost import cost_of, image_call_cost, image_cost, image_token_cost
from relaygate.pricing.models import ImagePrices, ModelPrice, PriceEntry, PriceKey, PriceSource, parse_price_key

__all__ = [
    "Catalogue",
    "CatalogueError",
    "CatalogueKind",
    "ImagePrices",
    "ModelPrice",
    "PriceBook",
    "PriceEntry",
    "PriceKey",
    "PriceSource",
    "cost_of",
    "default_catalogue",
    "image_call_cost",
    "image_cost",
    "image_token_cost",
    "load_catalogue",
    "parse_price_key",
]
