"""Four fictional contracts as clause chunks; `clause_extraction` asks for one clause's key term.

Every clause chunk names its contract ("<party> <kind> (<year>)") so that the same clause
rendered for other parties, look-alike names or a superseded year is a confusable
distractor for the long_noisy items.
"""
from dataclasses import dataclass

from golden.common import Fact, chunk, fact_item


@dataclass
class Clause:
    n: int
    title: str
    body: str                       # may hold {v}
    value: str | None = None
    question: str | None = None     # {c} stands for "the <party> <kind>"
    answers: tuple[str, ...] = ()
    alts: tuple[str, ...] = ()


@dataclass
class Contract:
    key: str
    kind: str
    party: str                      # the entity questions name: "the <party> <kind>"
    year: int
    old_year: int
    similar: tuple[str, ...]
    others: tuple[str, ...]
    clauses: tuple[Clause, ...]

    def header(self, year: str) -> str:
        return f"{{e}} {self.kind} ({year}), clause "

    def text(self, c: Clause) -> str:
        return (self.header(str(self.year)) + f"{c.n} ({c.title}). " + c.body).format(e=self.party, v=c.value)


CONTRACTS = [
    Contract("msa", "services agreement", "Halvard Logistics", 2022, 2017,
             ("Halvard Logistic Group", "Halvard Logistics Asia"),
             ("Westmarch Freight", "Kestrel Foods", "Greywater Marine", "Redfern Tooling"), (
        Clause(1, "Services", "Corvid Systems will provide fleet-tracking software, hosting and second-line "
               "support to Halvard Logistics as described in each statement of work."),
        Clause(2, "Fees", "Halvard Logistics will pay each undisputed invoice within 45 days of the invoice "
               "date. Late amounts carry interest at one percent per month."),
        Clause(3, "Term", "This agreement starts on 1 April 2022 and runs for an initial term of three years, "
               "renewing automatically for further one-year periods."),
        Clause(4, "Termination for convenience", "Either party may terminate this agreement for convenience "
               "by giving at least {v} of written notice to the other party. Termination does not affect "
               "fees already due.", "90 days",
               "How much written notice is needed to terminate {c} for convenience?", ("90 days",),
               ("30 days", "60 days", "120 days", "45 days", "180 days")),
        Clause(5, "Limitation of liability", "Each party's total liability under this agreement is capped "
               "at {v}, except for breaches of confidentiality and for fraud.", "$2,500,000",
               "What is the cap on each party's total liability under {c}?", ("$2,500,000",),
               ("$1,000,000", "$5,000,000", "$750,000", "$3,000,000", "$1,500,000")),
        Clause(6, "Governing law", "This agreement is governed by the laws of {v}, and the courts located "
               "there have exclusive jurisdiction over any dispute.", "the State of Delaware",
               "Which law governs {c}?", ("Delaware",),
               ("the State of New York", "the State of California", "the State of Texas",
                "the State of Illinois", "the State of Washington")),
    )),
    Contract("supply", "supply agreement", "Quarry Lane Foods", 2023, 2019,
             ("Quarry Lane Farms", "Quarry Lake Foods"),
             ("Orrin Valley Farms", "Cask & Crane Brewing", "Pike Hollow Mills", "Tamsin Biotech"), (
        Clause(1, "Products", "Ostrava Packaging will supply printed cardboard trays and film lids for the "
               "ready-meal range of Quarry Lane Foods."),
        Clause(2, "Delivery", "The supplier will deliver each order within {v} of receiving the purchase "
               "order, to the buyer's warehouse in Leeds.", "ten business days",
               "How soon must each order be delivered under {c}?", ("ten business days", "10 business days"),
               ("five business days", "fifteen business days", "twenty business days", "seven business days")),
        Clause(3, "Price", "Prices are fixed for the first year and may then rise by no more than the annual "
               "change in the producer price index."),
        Clause(4, "Warranty", "The supplier warrants that all products will be free from defects in "
               "material and workmanship for {v} after delivery.", "18 months",
               "How long is the product warranty under {c}?", ("18 months",),
               ("12 months", "24 months", "6 months", "36 months", "9 months")),
        Clause(5, "Early termination", "If the buyer ends this agreement before the end of the initial term "
               "without cause, it must pay the supplier a termination fee of {v}.", "$180,000",
               "What is the early termination fee under {c}?",
               ("$180,000",), ("$120,000", "$250,000", "$95,000", "$300,000", "$75,000")),
        Clause(6, "Governing law", "This agreement is governed by the laws of England and Wales."),
    )),
    Contract("licence", "software licence", "Granite Peak Insurance", 2021, 2016,
             ("Granite Peak Assurance", "Granite Point Insurance"),
             ("Merrow Insurance", "Juniper Arc Health", "Bellweather Solar", "Saltbridge Media"), (
        Clause(1, "Licence grant", "Tessellate Software grants the licensee the right to use its claims "
               "platform for up to {v} at any one time.",
               "450 named users", "How many named users does {c} allow?", ("450",),
               ("300 named users", "600 named users", "250 named users", "500 named users", "800 named users")),
        Clause(2, "Fees", "The licence fee is payable yearly in advance. Support and upgrades are included "
               "in the licence fee."),
        Clause(3, "Confidentiality", "Each party will keep the other's confidential information secret. "
               "These obligations survive for {v} after the agreement ends.", "five years",
               "How long does confidentiality last after {c} ends?",
               ("five years", "5 years"), ("three years", "seven years", "two years", "ten years", "four years")),
        Clause(4, "Service levels", "The platform will be available 99.5 percent of each month, measured "
               "outside agreed maintenance windows."),
        Clause(5, "Disputes", "Any dispute that the parties cannot settle by negotiation will be resolved by "
               "arbitration seated in {v}.", "Toronto", "In which city is arbitration seated under {c}?", ("Toronto",),
               ("Vancouver", "Montreal", "Calgary", "Ottawa", "Winnipeg")),
        Clause(6, "Governing law", "This agreement is governed by the laws of the Province of Ontario."),
    )),
    Contract("lease", "shop lease", "Lantern Bakery", 2024, 2018,
             ("Lantern Bakeries Inc", "Lantern Bake House"),
             ("Cask & Crane Brewing", "Marlowe Coffee", "Kestrel Foods", "Halcyon Optics"), (
        Clause(1, "Premises", "Harbourview Properties lets to the tenant Unit 4, 18 Quayside Road, for use as a "
               "bakery and cafe with seating for up to forty customers."),
        Clause(2, "Rent", "The tenant will pay a monthly base rent of {v}, due on the first day of each "
               "month by bank transfer.", "$7,250", "What is the monthly base rent under {c}?", ("$7,250",),
               ("$6,800", "$7,900", "$5,750", "$8,400", "$6,250")),
        Clause(3, "Deposit", "On signing, the tenant will pay a security deposit of {v}, which the landlord "
               "holds until the lease ends.", "$21,750", "How much is the security deposit under {c}?", ("$21,750",),
               ("$14,500", "$18,000", "$24,000", "$12,750", "$30,000")),
        Clause(4, "Term", "The lease runs for five years from 1 February 2024."),
        Clause(5, "Break clause", "The tenant may end the lease on its third anniversary by giving the "
               "landlord {v} written notice.", "six months'",
               "How much notice must the tenant give to use the break clause of {c}?", ("six months", "6 months"),
               ("three months'", "nine months'", "twelve months'", "four months'", "two months'")),
        Clause(6, "Insurance", "The landlord insures the building; the tenant insures its own fittings, "
               "stock and equipment."),
    )),
]


def clause_facts() -> list[Fact]:
    """A Fact for every clause that carries a question, numbered clause-01, clause-02, ..."""
    facts = []
    for ct in CONTRACTS:
        for c in ct.clauses:
            if c.question is None:
                continue
            pattern = ct.header(str(ct.year)) + f"{c.n} ({c.title}). " + c.body
            old = ct.header(f"{ct.old_year}, superseded in {ct.year}") + f"{c.n} ({c.title}). " + c.body
            question = c.question.format(c=f"the {ct.party} {ct.kind}")
            facts.append(Fact(f"clause-{len(facts) + 1:02d}", question, list(c.answers), ct.party, c.value,
                              pattern, old, list(c.alts), list(ct.similar), f"{ct.key}-{ct.year}",
                              [ct.text(o) for o in ct.clauses if o is not c], list(ct.others)))
    return facts


def build(rng) -> list[dict]:
    """One item per question clause: the whole contract, clauses in order, gold = the asked clause."""
    items = []
    for f in clause_facts():
        ct = next(ct for ct in CONTRACTS if ct.party == f.entity)
        chunks = [chunk(f"clause-{c.n}", ct.text(c), f.source) for c in ct.clauses]
        gold = next(ch["id"] for ch in chunks if ch["text"] == f.gold_text)
        items.append(fact_item(f, "clause_extraction", chunks, gold))
    return items
