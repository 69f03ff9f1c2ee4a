"""`lookup` facts: one company fact in a short clean chunk (~100 tokens of context per item)."""
from golden.common import Fact, chunk, fact_item

PEOPLE = ["Tomas Reyes", "Joan Pike", "Hideo Marsh", "Lena Vostrikova", "Samir Haddad", "Grace Obuya",
          "Pieter Aalders", "Nadia Ferro", "Owen Lachlan", "Rosa Quintero"]

FACTS = [
    Fact("lookup-01", "Who is the chief executive of Brindle Analytics?", ["Maren Okafor"],
         "Brindle Analytics", "Maren Okafor",
         "{e} is a data consultancy with offices in three states. Its chief executive is {v}, who oversees "
         "a team of analysts working mainly for regional hospitals and transport operators.",
         "From 2012 until 2019 the chief executive of {e} was {v}, who has since retired from the company "
         "and now chairs a local charity.",
         PEOPLE, ["Brindle Analytica", "Brindlemoor Analytics"], "brindle-profile",
         ["Brindle Analytics reported revenue of $48 million last year and opened a new office in Boise."]),
    Fact("lookup-02", "In which city is Quillfeather Paper Co. headquartered?", ["Duluth"],
         "Quillfeather Paper Co.", "Duluth, Minnesota",
         "{e} makes recycled packaging paper for grocery chains. The company is headquartered in {v}, "
         "where it also runs its largest mill and a small research laboratory.",
         "{e} was headquartered in {v} until 2015, when it sold that building and moved its head office.",
         ["Fargo, North Dakota", "Spokane, Washington", "Erie, Pennsylvania", "Tulsa, Oklahoma",
          "Reno, Nevada", "Macon, Georgia"], ["Quillfeather Papers Ltd.", "Quillfield Paper Co."],
         "quillfeather-profile", ["Quillfeather Paper Co. ships about 90,000 tonnes of paper a year."]),
    Fact("lookup-03", "In what year was Osterby Robotics founded?", ["2009"],
         "Osterby Robotics", "2009",
         "{e} builds warehouse picking robots for parcel carriers. The company was founded in {v} by two "
         "former university engineers and is still privately owned.",
         "{e} opened its first overseas office, in Rotterdam, in {v}.",
         ["2004", "2011", "2013", "2006", "2015", "2001"], ["Osterbye Robotics", "Osterby Automation"],
         "osterby-profile", ["Osterby Robotics has installed more than 1,800 robots in 14 countries."]),
    Fact("lookup-04", "How many people does Tallgrass Bio employ?", ["1,240", "1240"],
         "Tallgrass Bio", "1,240",
         "{e} develops drought-tolerant seed varieties. The company employs {v} people across its "
         "laboratories and test farms, most of them in the Midwest.",
         "In 2018 {e} employed {v} people, before its expansion into seed processing.",
         ["860", "1,975", "2,310", "540", "1,410", "3,050"], ["Tallgrass Biologics", "Tall Grass Bioscience"],
         "tallgrass-profile", ["Tallgrass Bio sells its seed through 300 independent dealers."]),
    Fact("lookup-05", "What is the retail price of the Nimbus Kettle from Harrow Home?", ["$149"],
         "Harrow Home", "$149",
         "The Nimbus Kettle from {e} holds 1.7 litres and boils in under three minutes. Its recommended "
         "retail price is {v}, which includes a two-year warranty.",
         "When it launched in 2020, the Nimbus Kettle from {e} sold for {v}; the price has since been raised.",
         ["$129", "$99", "$179", "$139", "$159", "$119"], ["Harrow House", "Harrowgate Home"],
         "harrow-catalogue", ["Harrow Home sells kitchen appliances through its own website and 40 shops."]),
    Fact("lookup-06", "What is the rated range of the Strada e-bike from Velora?", ["85 kilometres", "85 km"],
         "Velora", "85 kilometres",
         "The Strada e-bike from {e} uses a 540 Wh battery. Its rated range is {v} on a single charge in "
         "eco mode, and the battery recharges in about five hours.",
         "The first-generation Strada e-bike from {e} had a rated range of {v} with a smaller battery.",
         ["70 kilometres", "110 kilometres", "95 kilometres", "60 kilometres", "120 kilometres"],
         ["Velor Bikes", "Velora Cycles"], "velora-spec", ["Velora assembles its bicycles in Porto."]),
    Fact("lookup-07", "Which firm audits the accounts of Ardent Freight?", ["Lindqvist & Boone"],
         "Ardent Freight", "Lindqvist & Boone LLP",
         "{e} operates a fleet of 300 refrigerated trucks. Its annual accounts are audited by {v}, and the "
         "audit committee meets four times a year.",
         "Until the 2021 financial year the accounts of {e} were audited by {v}.",
         ["Marsh Kettering LLP", "Abernathy Cole & Co.", "Paxton Reid LLP", "Holloway Strand LLP",
          "Everett & Vance LLP"], ["Ardent Freightways", "Ardentia Freight"], "ardent-annual-report",
         ["Ardent Freight moves chilled food for supermarkets in the Pacific Northwest."]),
    Fact("lookup-08", "Under what ticker symbol do Cobaltline Energy shares trade?", ["CBLN"],
         "Cobaltline Energy", "CBLN",
         "{e} develops grid-scale battery storage in Texas and Arizona. Its shares trade under the ticker "
         "symbol {v}, and it has paid a dividend every year since 2019.",
         "Before its 2020 merger, {e} traded under the ticker symbol {v}.",
         ["CLNE", "CBEN", "CBLT", "KBLN", "CBNE"], ["Cobalt Line Power", "Cobaltline Energia"],
         "cobaltline-investors", ["Cobaltline Energy has 1.2 gigawatt-hours of storage in operation."]),
    Fact("lookup-09", "Who is the chief medical officer of Pemberton Clinics?", ["Ines Castellano"],
         "Pemberton Clinics", "Dr. Ines Castellano",
         "{e} runs eleven outpatient clinics in the Carolinas. Its chief medical officer is {v}, who also "
         "chairs the group's patient safety committee.",
         "{v} served as chief medical officer of {e} until 2020 and now advises the board.",
         ["Dr. Paul Hennig", "Dr. Amara Diallo", "Dr. Yuki Tanabe", "Dr. Colm Fitzgerald", "Dr. Sofia Brandt"],
         ["Pemberley Clinics", "Pemberton Health Centres"], "pemberton-leadership",
         ["Pemberton Clinics treats about 400,000 patients a year."]),
    Fact("lookup-10", "How many stores does Marlowe Coffee operate?", ["212"],
         "Marlowe Coffee", "212",
         "{e} roasts its beans in Portland and sells them through its own cafes. The chain currently "
         "operates {v} stores, and every store offers a refill discount.",
         "At the end of 2019 {e} operated {v} stores.",
         ["187", "240", "165", "198", "231", "256"], ["Marlow Coffee House", "Marlowe Roasters"],
         "marlowe-profile", ["Marlowe Coffee buys most of its beans from cooperatives in Peru."]),
    Fact("lookup-11", "What is the flagship game of Sablewood Games?", ["Lanterns of Orrin"],
         "Sablewood Games", "Lanterns of Orrin",
         "{e} is an independent studio of about 80 developers. Its flagship game is {v}, a puzzle "
         "adventure that has sold more than two million copies.",
         "Before its current title, the flagship game of {e} was {v}, which is no longer sold.",
         ["Ember Road", "The Glass Orchard", "Tidewater Keep", "Saltmarsh Tales", "Hollow Crown Derby"],
         ["Sablewood Studios", "Sable Wood Interactive"], "sablewood-profile",
         ["Sablewood Games was started by three former animators in Montreal."]),
    Fact("lookup-12", "Which email address handles customer support at Fenwick Hydraulics?",
         ["help@fenwick-hydraulics.example"], "Fenwick Hydraulics", "help@fenwick-hydraulics.example",
         "{e} supplies pumps and valves to farm equipment makers. Customer support requests should be "
         "sent to {v} and are answered within one business day.",
         "The old support address of {e}, {v}, was closed in 2022 and no longer receives mail.",
         ["service@fenwick-hyd.example", "support@fenwickpumps.example", "care@fenwick-group.example",
          "info@fenwick-valves.example"], ["Fenwick Hydraulic Systems", "Fenwicke Hydraulics"],
         "fenwick-contacts", ["Fenwick Hydraulics has a service centre in Des Moines."]),
]


def build(rng) -> list[dict]:
    """One item per fact: the gold chunk plus one harmless background chunk, in a seeded order."""
    items = []
    for f in FACTS:
        chunks = [chunk("c1", f.gold_text, f.source)] + [chunk(f"c{i + 2}", t, f.source)
                                                         for i, t in enumerate(f.background)]
        order = chunks[:]
        rng.shuffle(order)
        items.append(fact_item(f, "lookup", order, "c1"))
    return items
