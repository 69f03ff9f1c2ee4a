"""Fictional contracts as clause chunks; `clause_extraction` asks for one clause's key term.

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


# Second batch (clause-13 .. clause-22): built only by build_more(), never seen by clause_facts()/build().
MORE_CONTRACTS = [
    Contract("distrib", "distribution agreement", "Thornbury Cycle Works", 2023, 2020,
             ("Thornbury Cycles", "Thornbury Cycle Workshop"),
             ("Alderney Paints", "Wrenfield Audio", "Mosscrop Seeds", "Fennimore Glass"), (
        Clause(1, "Appointment", "Thornbury Cycle Works appoints Calloway Trading as its exclusive distributor "
               "of electric bicycles and spare parts in Portugal and Spain."),
        Clause(2, "Payment", "The distributor will pay each invoice within {v} of the delivery date. Invoices "
               "not paid on time may be passed to a collection agency.", "60 days",
               "How long does the distributor have to pay each invoice under {c}?", ("60 days",),
               ("30 days", "45 days", "90 days", "14 days", "75 days")),
        Clause(3, "Minimum purchases", "The distributor will buy at least 1,200 bicycles in each contract "
               "year; if it falls short, the supplier may remove Spain from the territory."),
        Clause(4, "Term", "This agreement runs for four years from 1 March 2023 and may be extended by "
               "written agreement of both parties."),
        Clause(5, "Liability", "Neither party is liable to the other for more than {v} in any contract year, "
               "except for death or personal injury caused by negligence.", "$1,750,000",
               "What is the most either party can be liable for in a contract year under {c}?", ("$1,750,000",),
               ("$1,250,000", "$2,000,000", "$900,000", "$3,500,000", "$1,500,000")),
        Clause(6, "Governing law", "This agreement is governed by the laws of {v}, and the parties submit to "
               "the exclusive jurisdiction of the courts of Dublin.", "Ireland",
               "Which law governs {c}?", ("Ireland",),
               ("England and Wales", "Scotland", "France", "the Netherlands", "Germany")),
    )),
    Contract("consult", "consulting agreement", "Marisol Orthodontics", 2024, 2019,
             ("Marisol Orthodontic Care", "Marisel Orthodontics"),
             ("Quillon Robotics", "Sorrel Bay Hotels", "Tidewell Pharmacy", "Brackwater Pet Supplies"), (
        Clause(1, "Engagement", "Wexcombe Advisory will review how Marisol Orthodontics books patients across "
               "its eleven clinics and recommend changes to the booking process."),
        Clause(2, "Fees", "The consultant charges a fixed daily rate of {v}, invoiced at the end of each "
               "calendar month for the days actually worked.", "$1,350",
               "What daily rate does the consultant charge under {c}?", ("$1,350",),
               ("$1,100", "$1,600", "$950", "$1,800", "$1,250")),
        Clause(3, "Expenses", "Travel costs are reimbursed at cost if the client approved them in writing "
               "beforehand; no other expenses are reimbursed."),
        Clause(4, "Confidentiality", "The consultant will not disclose any patient or business information of "
               "the client, and this duty continues for {v} after the engagement ends.", "seven years",
               "For how long after {c} ends must the consultant keep information confidential?",
               ("seven years", "7 years"), ("three years", "five years", "ten years", "two years", "four years")),
        Clause(5, "Termination", "Either party may end this agreement at any time by giving {v} written "
               "notice; the client still pays for days already worked.", "four weeks'",
               "How much written notice is needed to end {c}?", ("four weeks", "4 weeks"),
               ("two weeks'", "six weeks'", "eight weeks'", "three weeks'", "twelve weeks'")),
        Clause(6, "Governing law", "This agreement is governed by the laws of the State of Oregon."),
    )),
    Contract("equipment", "equipment lease", "Fairhaven Print Studio", 2022, 2015,
             ("Fairhaven Printworks", "Fairview Print Studio"),
             ("Hollin Ceramics", "Druridge Outfitters", "Ravensmere Signs", "Penrose Yarns"), (
        Clause(1, "Equipment", "Oakhurst Leasing leases to Fairhaven Print Studio two wide-format printers and "
               "one laminator, delivered to its workshop in Glasgow."),
        Clause(2, "Term", "The lease runs for 48 months from the delivery date and cannot be renewed."),
        Clause(3, "Payments", "The lessee will pay {v} each quarter, in advance, by direct debit. Payments "
               "more than ten days late incur an administration charge.", "$4,980",
               "How much does the lessee pay each quarter under {c}?", ("$4,980",),
               ("$3,750", "$5,400", "$4,250", "$6,120", "$2,990")),
        Clause(4, "Maintenance", "The lessor will service the equipment twice a year and repair any fault "
               "within two working days of being told of it."),
        Clause(5, "Governing law", "This lease is governed by the laws of Scotland."),
        Clause(6, "Disputes", "A dispute that is not settled within one month of being raised will be "
               "referred to arbitration seated in {v}.", "Edinburgh",
               "In which city is arbitration seated under {c}?", ("Edinburgh",),
               ("Aberdeen", "Dundee", "Inverness", "Perth", "Stirling")),
    )),
    Contract("purchase", "equipment purchase agreement", "Kinloch Dairy Cooperative", 2021, 2014,
             ("Kinloch Dairies", "Kinross Dairy Cooperative"),
             ("Bramblecote Cider", "Ettermoor Creamery", "Loxley Juice Co", "Corrievale Springs"), (
        Clause(1, "Equipment", "Vantorre Machinery will sell, deliver and install one automatic bottling line "
               "rated at 9,000 bottles per hour for Kinloch Dairy Cooperative."),
        Clause(2, "Price", "The purchase price is $640,000, with 30 percent due on signing and the balance "
               "due on acceptance of the line."),
        Clause(3, "Delivery", "The seller will deliver the line to the buyer's plant within {v} of signing. "
               "For each week of delay the price falls by 0.5 percent, up to 5 percent.", "sixteen weeks",
               "How soon must the line be delivered under {c}?", ("sixteen weeks", "16 weeks"),
               ("twelve weeks", "twenty weeks", "ten weeks", "twenty-four weeks", "eight weeks")),
        Clause(4, "Acceptance", "The line is accepted once it has run for 72 hours at rated speed without a "
               "stoppage caused by the seller."),
        Clause(5, "Warranty", "The seller warrants the line against defects in design, material and "
               "workmanship for {v} from acceptance.", "two years",
               "How long is the warranty on the line under {c}?", ("two years", "2 years"),
               ("one year", "three years", "eighteen months", "five years", "four years")),
        Clause(6, "Governing law", "This agreement is governed by the laws of New Zealand."),
    )),
]


def _facts(contracts: list[Contract], first: int = 1) -> list[Fact]:
    """A Fact for every clause in `contracts` that carries a question, numbered clause-<first>, ..."""
    facts = []
    for ct in contracts:
        for c in ct.clauses:
            if c.question is None:
                continue
            pattern = ct.header(str(ct.year)) + f"{c.n} ({c.title}). " + c.body
            old = ct.header(f"{ct.old_year}, superseded in {ct.year}") + f"{c.n} ({c.title}). " + c.body
            question = c.question.format(c=f"the {ct.party} {ct.kind}")
            facts.append(Fact(f"clause-{len(facts) + first:02d}", question, list(c.answers), ct.party, c.value,
                              pattern, old, list(c.alts), list(ct.similar), f"{ct.key}-{ct.year}",
                              [ct.text(o) for o in ct.clauses if o is not c], list(ct.others)))
    return facts


def _items(contracts: list[Contract], facts: list[Fact]) -> list[dict]:
    """One item per fact: the whole contract, clauses in order, gold = the asked clause."""
    items = []
    for f in facts:
        ct = next(ct for ct in contracts if ct.party == f.entity)
        chunks = [chunk(f"clause-{c.n}", ct.text(c), f.source) for c in ct.clauses]
        gold = next(ch["id"] for ch in chunks if ch["text"] == f.gold_text)
        items.append(fact_item(f, "clause_extraction", chunks, gold))
    return items


def clause_facts() -> list[Fact]:
    """A Fact for every clause of CONTRACTS that carries a question, numbered clause-01, clause-02, ..."""
    return _facts(CONTRACTS)


def build(rng) -> list[dict]:
    """One item per question clause: the whole contract, clauses in order, gold = the asked clause."""
    return _items(CONTRACTS, clause_facts())


def build_more(rng) -> list[dict]:
    """The second batch, clause-13 .. clause-22, from MORE_CONTRACTS, built exactly as build() builds its items."""
    return _items(MORE_CONTRACTS, _facts(MORE_CONTRACTS, first=len(clause_facts()) + 1))
